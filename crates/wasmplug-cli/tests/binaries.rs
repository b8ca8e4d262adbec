//! The two binaries: `wasmplug` links none of the service's code and hands
//! `serve` and the registry's verbs to `wasmplug-service` beside it, which
//! then is the process: its output, its exit code.

use std::path::Path;
use std::process::{Command, Output};

mod support;

/// A function of the HTTP service reachable only from `serve`: its accept
/// loop.
const SERVICE_ONLY_FUNCTION: &str = "serve_connections";

/// Whether the executable at `path` has a symbol whose name contains `part`.
fn has_symbol(path: &str, part: &str) -> bool {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    object::Object::symbols(&file)
        .any(|symbol| object::ObjectSymbol::name(&symbol).is_ok_and(|name| name.contains(part)))
}

#[test]
fn wasmplug_links_none_of_the_service_and_wasmplug_service_does() {
    assert!(
        has_symbol(env!("CARGO_BIN_EXE_wasmplug-service"), SERVICE_ONLY_FUNCTION),
        "wasmplug-service has the service's accept loop"
    );
    assert!(
        !has_symbol(env!("CARGO_BIN_EXE_wasmplug"), SERVICE_ONLY_FUNCTION),
        "wasmplug links the service's accept loop"
    );
}

fn check_config(wasmplug: &Path, plugins: &Path) -> Output {
    Command::new(wasmplug)
        .args(["serve", "--check-config", "--plugins"])
        .arg(plugins)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn a_service_verb_runs_in_wasmplug_service_with_its_output_and_exit_code() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("process.wasm"), support::plugin("process")).unwrap();
    let good = check_config(Path::new(env!("CARGO_BIN_EXE_wasmplug")), plugins.path());
    assert_eq!(
        (good.status.code(), String::from_utf8_lossy(&good.stderr).as_ref()),
        (Some(0), "process: ok\n")
    );

    std::fs::write(plugins.path().join("broken.wasm"), b"\0asm but not a module").unwrap();
    let bad = check_config(Path::new(env!("CARGO_BIN_EXE_wasmplug")), plugins.path());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.lines().any(|line| line.starts_with("broken: ")), "{stderr}");
    assert!(stderr.lines().any(|line| line == "process: ok"), "{stderr}");
}

#[test]
fn a_bad_service_command_line_is_refused_by_wasmplug_itself() {
    // No wasmplug-service beside this copy: a usage error must not need it.
    let alone = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wasmplug = alone.path().join("wasmplug");
    std::fs::copy(env!("CARGO_BIN_EXE_wasmplug"), &wasmplug).unwrap();
    let output = Command::new(&wasmplug)
        .args(["serve", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn without_wasmplug_service_beside_it_one_shot_verbs_work_and_service_verbs_say_what_is_missing() {
    let alone = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wasmplug = alone.path().join("wasmplug");
    std::fs::copy(env!("CARGO_BIN_EXE_wasmplug"), &wasmplug).unwrap();
    std::fs::write(alone.path().join("process.wasm"), support::plugin("process")).unwrap();

    let run = Command::new(&wasmplug)
        .args(["run", "--no-cache", "process.wasm", "process", "21"])
        .current_dir(alone.path())
        .output()
        .unwrap();
    assert_eq!(
        (run.status.code(), String::from_utf8_lossy(&run.stdout).as_ref()),
        (Some(0), "43\n")
    );

    let serve = check_config(&wasmplug, alone.path());
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "{stderr}");
    let expected = alone.path().join("wasmplug-service");
    assert!(
        stderr.starts_with(&format!("error: cannot start {}", expected.display())),
        "names the missing binary: {stderr}"
    );
}
