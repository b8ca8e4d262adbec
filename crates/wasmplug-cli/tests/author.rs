//! A plugin author's path, exactly as the README's "Write your own plugin"
//! gives it, from an empty folder with only the `wasmplug` binary:
//! `wasmplug new`, `wasmplug build`, `wasmplug serve --plugins .`, one
//! request. And `wasmplug build` against the seed's own command line.

use std::path::Path;
use std::process::{Command, Output};

mod support;

fn wasmplug(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "wasmplug {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `new`, `build`, `serve --plugins .` and one call, in an empty folder.
fn new_build_serve_call(new: &[&str], source: &str, body: &str, expected: &str) {
    // The toolchain the repository's tests install when missing; `wasmplug
    // build` itself never installs it unasked.
    wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false).expect("the wasm32 toolchain");
    let dir = tempfile::tempdir().unwrap();
    wasmplug(dir.path(), new);
    let built = wasmplug(dir.path(), &["build", source]);
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(stdout.contains("hello: "), "the exports are listed: {stdout}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_wasmplug"));
    serve
        .args(["serve", "--plugins", ".", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path());
    let (mut child, address) = support::start_command(serve);
    let answer = support::request(address, "POST", "/v1/plugins/hello/call/hello", body.as_bytes());
    child.kill().unwrap();
    child.wait().unwrap();
    let (status, body) = answer.expect("the service answers");
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (200, expected));
}

#[test]
fn a_c_plugin_from_an_empty_folder_to_a_served_call() {
    new_build_serve_call(&["new", "hello"], "hello.c", r#"{"args":[21]}"#, r#"{"results":[43]}"#);
}

#[test]
fn a_cpp_plugin_with_libcxx_from_an_empty_folder_to_a_served_call() {
    // 0 + 1 + … + 20, summed from a std::vector.
    new_build_serve_call(
        &["new", "hello", "--lang", "cpp"],
        "hello.cpp",
        r#"{"args":[21]}"#,
        r#"{"results":[210]}"#,
    );
}

#[test]
fn bytes_abi_plugins_in_c_and_cpp_answer_their_input() {
    wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false).expect("the wasm32 toolchain");
    for (lang, source) in [("c", "hello.c"), ("cpp", "hello.cpp")] {
        let dir = tempfile::tempdir().unwrap();
        wasmplug(dir.path(), &["new", "hello", "--bytes", "--lang", lang]);
        let built = wasmplug(dir.path(), &["build", source]);
        assert!(String::from_utf8_lossy(&built.stdout).contains("bytes ABI"), "{lang}");
        let run = wasmplug(dir.path(), &["run", "hello.wasm", "hello", "--input", "world"]);
        assert_eq!(String::from_utf8_lossy(&run.stdout), "hello, world!", "{lang}");
    }
}

#[test]
fn build_makes_the_seeds_module_byte_for_byte() {
    let toolchain =
        wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false).expect("the wasm32 toolchain");
    // The seed's plugin and its flags, from the repository's copy: its
    // first line is the seed's command line, the rest its source.
    let process =
        std::fs::read_to_string(wasmplug_test_support::project_root().join("cpp-plugins/process.cpp")).unwrap();
    let comment = wasmplug_build::BuildComment::parse(&process).unwrap();
    assert_eq!(
        comment.flags,
        ["-nostdlib", "-Wl,--no-entry", "-Wl,--export=process", "-O3"],
        "the seed's flags"
    );
    let seed: String = process
        .lines()
        .filter(|line| !line.starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect();
    let (theirs, ours) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&theirs, &ours] {
        std::fs::write(dir.path().join("plugin.cpp"), &seed).unwrap();
    }
    // The seed's command line, with this machine's clang++ and the flags
    // that let it find wasm-ld (`--target=wasm32-wasi` among them).
    let status = Command::new(&toolchain.cpp_compiler)
        .args(&toolchain.base_flags)
        .args(&comment.flags)
        .args(["-o", "plugin.wasm", "plugin.cpp"])
        .current_dir(theirs.path())
        .status()
        .unwrap();
    assert!(status.success());
    wasmplug(
        ours.path(),
        &["build", "plugin.cpp", "--export", "process", "--opt-level", "3"],
    );
    let (theirs, ours) = (
        std::fs::read(theirs.path().join("plugin.wasm")).unwrap(),
        std::fs::read(ours.path().join("plugin.wasm")).unwrap(),
    );
    assert_eq!(
        theirs, ours,
        "wasmplug build and the seed's command line made different modules"
    );
}

#[test]
fn build_names_what_is_wrong_in_one_place() {
    wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false).expect("the wasm32 toolchain");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.c"), "int broken(void) { return missing; }\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(["build", "broken.c"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing"), "clang's own diagnostic is shown: {stderr}");
    assert!(
        !dir.path().join("broken.wasm").exists(),
        "nothing is written for a failed build"
    );
    // An existing plugin source is never overwritten by `new`.
    std::fs::write(dir.path().join("mine.c"), "// mine\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(["new", "mine"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(dir.path().join("mine.c")).unwrap(), "// mine\n");
}

fn try_wasmplug(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn build_never_installs_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    wasmplug(dir.path(), &["new", "hello"]);
    // No compiler to be found: the answer is the command that installs
    // one, and nothing was run to install it.
    let output = Command::new(env!("CARGO_BIN_EXE_wasmplug"))
        .args(["build", "hello.c"])
        .current_dir(dir.path())
        .env("PATH", "/nonexistent")
        .env_remove("CC")
        .env_remove("CXX")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(wasmplug_build::INSTALL_COMMAND), "{stderr}");
    assert!(stderr.contains("--install-toolchain"), "{stderr}");
    assert!(!dir.path().join("hello.wasm").exists());
}

#[test]
fn build_handles_what_authors_write() {
    wasmplug_build::ensure_toolchain(wasmplug_build::Install::Never, false).expect("the wasm32 toolchain");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let stdout = |output: Output| String::from_utf8_lossy(&output.stdout).into_owned();

    // C and C++ sources in one plugin: each compiled as its own language.
    std::fs::write(path.join("helper.c"), "int helper(int x) { return x + 1; }\n").unwrap();
    std::fs::write(
        path.join("main.cpp"),
        "#include \"wasmplug.h\"\nextern \"C\" int helper(int);\n\
         WASMPLUG_EXPORT(twice) int twice(int x) { return 2 * helper(x); }\n",
    )
    .unwrap();
    std::fs::create_dir(path.join("out")).unwrap();
    wasmplug(path, &["build", "main.cpp", "helper.c", "-o", "out/mixed.wasm"]);
    assert_eq!(
        stdout(wasmplug(path, &["run", "out/mixed.wasm", "twice", "20"])),
        "42\n"
    );

    // A copy loop without libc: clang turns it into memcpy and memset,
    // which nothing provides; the build retries with bulk memory.
    std::fs::write(
        path.join("copy.c"),
        "#include \"wasmplug.h\"\nstatic unsigned char a[4096], b[4096];\n\
         WASMPLUG_EXPORT(copy) int copy(int n) {\n\
             for (int i = 0; i < n && i < 4096; i++) b[i] = a[i];\n\
             for (int i = 0; i < 4096; i++) a[i] = 7;\n\
             return b[0] + a[0];\n\
         }\n",
    )
    .unwrap();
    let built = stdout(wasmplug(path, &["build", "copy.c", "--opt-level", "3"]));
    assert!(built.contains("freestanding"), "{built}");
    let module = std::fs::read(path.join("copy.wasm")).unwrap();
    let report = wasmplug_inspect::ModuleReport::from_bytes(&module).unwrap();
    assert!(
        report
            .target_features
            .iter()
            .any(|feature| feature.name == "bulk-memory"),
        "the retry with bulk memory built it"
    );
    assert_eq!(stdout(wasmplug(path, &["run", "copy.wasm", "copy", "10"])), "7\n");

    // A local header that pulls in libc: not freestanding after all.
    std::fs::write(path.join("fmt.h"), "#include <stdio.h>\n").unwrap();
    std::fs::write(
        path.join("fmt.c"),
        "#include \"fmt.h\"\n#include \"wasmplug.h\"\nstatic char text[32];\n\
         WASMPLUG_EXPORT(digits) int digits(int x) { return snprintf(text, sizeof text, \"%d\", x); }\n",
    )
    .unwrap();
    let built = stdout(wasmplug(path, &["build", "fmt.c"]));
    assert!(built.contains("libc (wasi-libc"), "{built}");
    assert_eq!(stdout(wasmplug(path, &["run", "fmt.wasm", "digits", "12345"])), "5\n");

    // Never over a source, only to a .wasm, and --opt-level 0 to 3.
    // Refused by the build (exit 1) before anything is written, or by the
    // argument parser (exit 2, a usage error).
    for (args, code) in [
        (&["build", "copy.c", "-o", "copy.c"][..], 1),
        (&["build", "copy.c", "-o", "copy.txt"], 1),
        (&["build", "copy.c", "--opt-level", "4"], 2),
    ] {
        assert_eq!(try_wasmplug(path, args).status.code(), Some(code), "{args:?}");
    }
    assert!(std::fs::read_to_string(path.join("copy.c")).unwrap().contains("copy"));
    assert!(!path.join("copy.txt").exists());

    // A module that breaks the contract (a WASI command, not a reactor) is
    // kept apart, and a working plugin of that name stays as it was.
    std::fs::copy(path.join("copy.wasm"), path.join("command.wasm")).unwrap();
    std::fs::write(
        path.join("command.c"),
        "// wasmplug-build: -O2\nint main(void) { return 0; }\n",
    )
    .unwrap();
    assert_eq!(try_wasmplug(path, &["build", "command.c"]).status.code(), Some(1));
    assert!(path.join("command.rejected.wasm").exists());
    assert_eq!(std::fs::read(path.join("command.wasm")).unwrap(), module);
    // --opt-level beside a comment that sets its own flags is refused.
    assert_eq!(
        try_wasmplug(path, &["build", "command.c", "--opt-level", "1"])
            .status
            .code(),
        Some(1)
    );

    // Names `new` cannot give: keywords and libc's functions; `-` becomes `_`.
    for name in ["int", "free", "main", "wasmplug_output_str"] {
        assert_eq!(try_wasmplug(path, &["new", name]).status.code(), Some(1), "{name}");
    }
    let created = stdout(wasmplug(path, &["new", "my-plugin", "--dir", "sub"]));
    assert!(created.contains("cd sub"), "{created}");
    let built = stdout(wasmplug(&path.join("sub"), &["build", "my-plugin.c"]));
    assert!(built.contains("my_plugin: (i32) -> i32"), "{built}");
}
