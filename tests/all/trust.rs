//! Signed modules from the command line: `wasmplug keygen`, `sign`,
//! `verify`, `run --trusted-keys` and `token add`, and interoperation with
//! the `wasmsign2` CLI both ways.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmplug_tests::{plugin_path, wasmplug};

fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A key pair `<dir>/<name>.key` and `<dir>/<name>.pub`, made by `wasmplug keygen`.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let stem = dir.join(name);
    let output = wasmplug(&["keygen", "--name", text(&stem)]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("key id"), "{output:?}");
    (stem.with_extension("key"), stem.with_extension("pub"))
}

#[test]
fn sign_verify_and_run_only_what_a_trusted_key_signed() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (alice, _) = keygen(&keys, "alice");
    let (mallory, _) = keygen(dir.path(), "mallory");
    let secret_mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&alice).unwrap().permissions());
    assert_eq!(
        secret_mode & 0o777,
        0o600,
        "the secret key is readable only by its owner"
    );
    // keygen never overwrites a key.
    assert_eq!(wasmplug(&["keygen", "--name", text(&keys.join("alice"))]).code, 1);

    let unsigned = dir.path().join("unsigned.wasm");
    std::fs::copy(plugin_path("process"), &unsigned).unwrap();
    let signed = dir.path().join("signed.wasm");
    let by_mallory = dir.path().join("mallory.wasm");
    for (key, out) in [(&alice, &signed), (&mallory, &by_mallory)] {
        let output = wasmplug(&["sign", "--key", text(key), text(&unsigned), "-o", text(out)]);
        assert_eq!(output.code, 0, "{output:?}");
    }
    let tampered = dir.path().join("tampered.wasm");
    let mut bytes = std::fs::read(&signed).unwrap();
    // A custom section appended after the signed ones: the signature no
    // longer covers the whole module.
    bytes.extend_from_slice(&[0, 4, 3, b'x', b'y', b'z']);
    std::fs::write(&tampered, bytes).unwrap();

    let verify = |module: &Path| wasmplug(&["verify", "--trusted-keys", text(&keys), text(module)]);
    let output = verify(&signed);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("signed by alice"), "{output:?}");
    for (module, reason) in [
        (&unsigned, "unsigned"),
        (&by_mallory, "unknown key"),
        (&tampered, "bad signature"),
    ] {
        let output = verify(module);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(output.stderr.contains(reason), "{reason}: {output:?}");
        assert_eq!(output.stderr.lines().count(), 1, "one line: {output:?}");
    }

    // `run --trusted-keys`: the signed module runs, the others never start.
    let run = |module: &Path| wasmplug(&["run", "--trusted-keys", text(&keys), text(module), "process", "21"]);
    let output = run(&signed);
    assert_eq!((output.code, output.stdout.as_str()), (0, "43\n"), "{output:?}");
    for module in [&unsigned, &by_mallory, &tampered] {
        let output = run(module);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(output.stdout.is_empty(), "nothing ran: {output:?}");
        assert!(output.stderr.starts_with("error: refusing to run"), "{output:?}");
    }
    // A detached signature leaves the module as it was.
    let signature = dir.path().join("process.sig");
    let output = wasmplug(&[
        "sign",
        "--key",
        text(&alice),
        text(&unsigned),
        "--detached",
        text(&signature),
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        std::fs::read(&unsigned).unwrap(),
        std::fs::read(plugin_path("process")).unwrap()
    );
    let output = wasmplug(&[
        "verify",
        "--trusted-keys",
        text(&keys),
        "--signature",
        text(&signature),
        text(&unsigned),
    ]);
    assert_eq!(output.code, 0, "{output:?}");
}

#[test]
fn token_add_writes_a_hashed_line_and_prints_the_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    let output = wasmplug(&[
        "token",
        "add",
        "ci-images",
        "--file",
        text(&file),
        "--role",
        "publisher",
        "--plugins",
        "image-*",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let token = output.stdout.trim();
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        !written.contains(token),
        "the file holds the token's hash, never the token"
    );
    let tokens = wasmplug_trust::tokens::Tokens::new(Some(file.clone()), None).unwrap();
    let identity = tokens.authenticate(token).unwrap();
    assert_eq!(identity.name, "ci-images");
    assert!(identity.may(wasmplug_trust::tokens::Role::Publisher, "image-resize"));
    assert!(!identity.may(wasmplug_trust::tokens::Role::Publisher, "billing"));
    // The same name twice would make the file invalid: refused, file unchanged.
    let again = wasmplug(&["token", "add", "ci-images", "--file", text(&file), "--role", "admin"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
}

/// The `wasmsign2` CLI: on PATH, or where `cargo xtask ci` installs it.
fn wasmsign2() -> Option<PathBuf> {
    let installed = wasmplug_test_support::project_root().join("target/tools/bin/wasmsign2");
    if installed.exists() {
        return Some(installed);
    }
    Command::new("wasmsign2")
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|_| PathBuf::from("wasmsign2"))
}

#[test]
fn signatures_interoperate_with_the_wasmsign2_cli() {
    let Some(wasmsign2) = wasmsign2() else {
        if std::env::var_os("WASMPLUG_SKIP_WASMSIGN2").is_some() {
            println!("WASMPLUG_SKIP_WASMSIGN2 is set: skipped the interoperation test with the wasmsign2 CLI");
            return;
        }
        panic!(
            "the wasmsign2 CLI is needed: `cargo xtask ci` installs it into target/tools, or run \
             `cargo install wasmsign2-cli --version 0.2.8 --locked`; set WASMPLUG_SKIP_WASMSIGN2=1 to skip"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(&wasmsign2).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "wasmsign2 {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let module = text(&plugin_path("process")).to_owned();

    // wasmsign2 signs; wasmplug verifies and runs.
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (their_secret, their_public) = (dir.path().join("theirs.key"), keys.join("theirs.pub"));
    run(&["keygen", "-k", text(&their_secret), "-K", text(&their_public)]);
    let signed_by_them = dir.path().join("by-wasmsign2.wasm");
    run(&[
        "sign",
        "-k",
        text(&their_secret),
        "-K",
        text(&their_public),
        "-i",
        &module,
        "-o",
        text(&signed_by_them),
    ]);
    let output = wasmplug(&["verify", "--trusted-keys", text(&keys), text(&signed_by_them)]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("signed by theirs"), "{output:?}");
    let output = wasmplug(&[
        "run",
        "--trusted-keys",
        text(&keys),
        text(&signed_by_them),
        "process",
        "21",
    ]);
    assert_eq!((output.code, output.stdout.as_str()), (0, "43\n"), "{output:?}");

    // wasmplug signs; wasmsign2 verifies, with and without the key id.
    let (ours, our_public) = keygen(dir.path(), "ours");
    let signed_by_us = dir.path().join("by-wasmplug.wasm");
    let output = wasmplug(&["sign", "--key", text(&ours), &module, "-o", text(&signed_by_us)]);
    assert_eq!(output.code, 0, "{output:?}");
    run(&["verify", "-K", text(&our_public), "-i", text(&signed_by_us)]);
    // And refuses it under another key: the check can fail.
    let refused = Command::new(&wasmsign2)
        .args(["verify", "-K", text(&their_public), "-i", text(&signed_by_us)])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "wasmsign2 accepted a module under the wrong key"
    );
}
