//! `cargo xtask <command>`: build the C/C++ plugins and look inside wasm
//! modules. Run `cargo xtask help` for the commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use wasmplug_inspect::ModuleReport;
use xshell::{cmd, Shell};
use xtask::{build_plugins, plugins_out_dir, project_root, release_binary, release_example};

mod api_fuzz;
mod bench;
mod cluster;
mod extism_bench;
mod load_test;
mod scale;
mod service;
mod soak;
mod whole_process;

const HELP: &str = "\
cargo xtask <command>

commands:
    build-plugins            compile cpp-plugins/* into target/plugins/*.wasm
                             (only what changed)
    inspect <path-or-name>   print a module's imports, exports and memories;
                             a bare name like `numeric` means the built plugin
                             target/plugins/numeric.wasm
    serve [args...]          build the plugins and start the service on
                             127.0.0.1:8080 with them loaded (extra args go to
                             `wasmplug serve`)
    cluster [--replicas N]   start nats-server (JetStream) and N replicas (default
                             3) on loopback sharing it as their registry, publish
                             the example plugins, print the replicas' addresses;
                             Ctrl-C stops everything
    bench [--quick] [--report-only]
                             run the criterion benches (Extism's side by side
                             in crates/wasmplug-extism-bench, its own workspace),
                             the load test, the memory-at-scale run and the
                             whole-process comparison (hyperfine, installed if
                             missing: `wasmplug run` against the seed's
                             `wasmedge --reactor` command, or wasmtime's when
                             WasmEdge is not on PATH; skipped, saying so, with
                             neither), and write BENCHMARKS.md (--report-only:
                             from the last run's results)
    load-test [--seconds N]  start the release service on loopback and drive it
                             with wrk for N seconds per case (default 10), in 5
                             interleaved rounds: /healthz, call process(21),
                             call counter, invoke upper; then memory and
                             start-up with 0, 100 and 1,000 plugins
    soak [--minutes N]       mixed traffic (calls, invokes, uploads, rollbacks,
                             hostile plugins) against the release service for
                             N minutes (default 10); reports requests, errors
                             by code and memory at start, middle and end
    api-fuzz [--cases N]     property-based run of the HTTP API from
                             /openapi.json with schemathesis (installed into
                             target/schemathesis-venv); fails on any 5xx
    ci                       everything CI checks: toolchain, nats-server and
                             chromium (installed if missing), formatting,
                             clippy, every test (the console's in chromium), a
                             30-second soak, the WasmEdge backend's compile
                             check
    help                     print this message
";

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("build-plugins") => {
            no_more_arguments("build-plugins", &rest)?;
            build_plugins()?;
        }
        Some("inspect") => {
            let [target] = rest.as_slice() else {
                bail!("usage: cargo xtask inspect <path-or-plugin-name>");
            };
            let path = resolve_module(target)?;
            let bytes = sh
                .read_binary_file(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report =
                ModuleReport::from_bytes(&bytes).with_context(|| format!("cannot inspect {}", path.display()))?;
            print!("{}", report.render_text());
        }
        Some("serve") => {
            build_plugins()?;
            let plugins = plugins_out_dir();
            // Both binaries: `wasmplug serve` hands over to
            // `wasmplug-service`, which `cargo run` alone would not rebuild.
            cmd!(sh, "cargo build --release --package wasmplug-cli").run()?;
            let binary = release_binary();
            cmd!(
                sh,
                "{binary} serve --plugins {plugins} --listen 127.0.0.1:8080 {rest...}"
            )
            .run()?;
        }
        Some("bench") => {
            let quick = rest.iter().any(|arg| arg == "--quick");
            let report_only = rest.iter().any(|arg| arg == "--report-only");
            build_plugins()?;
            let load = if report_only {
                String::new()
            } else {
                let http = load_test::run(&sh, if quick { 10 } else { 20 }, 32)?;
                format!(
                    "{http}\n{}\n{}\n{}",
                    scale::run(&sh)?,
                    whole_process::run(&sh)?,
                    extism_bench::run(&sh, quick)?
                )
            };
            bench::run(&sh, quick, report_only, &load)?;
        }
        Some("load-test") => {
            let seconds = only_option("load-test", &rest, "--seconds", 10)?;
            build_plugins()?;
            println!("{}", load_test::run(&sh, seconds, 32)?);
            println!("{}", scale::run(&sh)?);
        }
        Some("soak") => {
            let minutes = only_option("soak", &rest, "--minutes", 10.0)?;
            build_plugins()?;
            println!("{}", soak::run(&sh, minutes)?);
        }
        Some("api-fuzz") => {
            let cases = only_option("api-fuzz", &rest, "--cases", 100)?;
            build_plugins()?;
            println!("{}", api_fuzz::run(&sh, cases)?);
        }
        Some("cluster") => {
            let replicas = only_option("cluster", &rest, "--replicas", 3)?;
            cluster::run(&sh, replicas)?;
        }
        Some("ci") => {
            no_more_arguments("ci", &rest)?;
            ci(&sh)?;
        }
        Some("help" | "--help" | "-h") | None => print!("{HELP}"),
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
    Ok(())
}

/// The value of `command`'s one optional `flag N` argument, or `default`.
fn only_option<T: std::str::FromStr>(command: &str, rest: &[String], flag: &str, default: T) -> anyhow::Result<T> {
    match rest {
        [] => Ok(default),
        [given, value] if given == flag => value.parse().ok().with_context(|| format!("{flag} takes a number")),
        _ => bail!("usage: cargo xtask {command} [{flag} N]"),
    }
}

fn no_more_arguments(command: &str, rest: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = rest.first() {
        bail!("`{command}` takes no arguments, got `{extra}`");
    }
    Ok(())
}

/// A path to a module as given, or the built plugin of that name.
fn resolve_module(target: &str) -> anyhow::Result<PathBuf> {
    let looks_like_path =
        target.contains(std::path::MAIN_SEPARATOR) || target.contains('/') || target.ends_with(".wasm");
    if looks_like_path {
        let path = Path::new(target);
        // The shell runs in the project root; keep paths relative to where
        // the user typed them.
        return std::env::current_dir()
            .map(|dir| dir.join(path))
            .context("cannot read the current directory");
    }
    build_plugins()?;
    let path = plugins_out_dir().join(format!("{target}.wasm"));
    if !path.is_file() {
        bail!("no plugin named `{target}` in {}", plugins_out_dir().display());
    }
    Ok(path)
}

/// The `wasmsign2` CLI the signature interoperation test runs, installed
/// from crates.io into `target/tools` once (its own target directory, so
/// it shares no build lock with the workspace).
fn ensure_wasmsign2(sh: &Shell) -> anyhow::Result<()> {
    let root = project_root().join("target/tools");
    if root.join("bin/wasmsign2").exists() {
        return Ok(());
    }
    let build = project_root().join("target/tools-build");
    cmd!(
        sh,
        "cargo install wasmsign2-cli --version 0.2.8 --locked --root {root} --target-dir {build}"
    )
    .run()?;
    Ok(())
}

/// What `.ci/run` runs, in order of how fast each step fails.
fn ci(sh: &Shell) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // A clean clone builds everything once: incremental state would only
    // add about 2 GB to the build's disk.
    let _incremental = sh.push_env("CARGO_INCREMENTAL", "0");
    report_free_disk(sh, "before building");
    build_plugins().context("building the plugins")?;
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    report_free_disk(sh, "after clippy");
    ensure_wasmsign2(sh).context("installing the wasmsign2 CLI (the signature interoperation test)")?;
    // The replicas' tests start nats-server; tests install nothing.
    xtask::ensure_nats_server().context("installing nats-server (the replicas' tests)")?;
    // The console's browser test drives chromium through chromedriver.
    xtask::ensure_browser().context("installing chromium and chromedriver (the console's browser test)")?;
    {
        let _insta = sh.push_env("INSTA_UPDATE", "no");
        // Installed just above: here a missing browser fails its test
        // rather than skipping it.
        let _browser = sh.push_env("WASMPLUG_REQUIRE_BROWSER", "1");
        let _backtrace = sh.push_env("RUST_BACKTRACE", "1");
        cmd!(sh, "cargo test --workspace").run()?;
    }
    report_free_disk(sh, "after the tests");
    // Half a minute of mixed traffic, hostile plugins included, against the
    // release build: any failed healthy call or 5xx fails CI.
    println!("{}", soak::run(sh, 0.5).context("the short soak")?);
    {
        // Type-checks every line behind the `wasmedge` feature without
        // libwasmedge (wasmedge-sys then uses its bundled bindings and links
        // nothing): the backend, the server and CLI that select it, and the
        // WasmEdge half of the parity and capability tests.
        let _docs_rs = sh.push_env("DOCS_RS", "1");
        cmd!(
            sh,
            "cargo check --package wasmplug-runtime --package wasmplug-server --package wasmplug-cli --package wasmplug-tests --all-targets --features wasmplug-runtime/wasmedge,wasmplug-server/wasmedge,wasmplug-cli/wasmedge,wasmplug-tests/wasmedge"
        )
        .run()?;
    }
    // The fuzz crate is a workspace of its own (cargo-fuzz's layout), which
    // nothing above builds: format-check and lint it on stable. Without
    // libFuzzer (`--no-default-features`), a type check needs no C++
    // compiler. Its committed Cargo.lock pins the versions it checks; not
    // `--locked`, so a dependency added to the runtime or the inspector is
    // added to that lock rather than failing CI. Sharing the workspace's
    // `target/` reuses any dependency checked there with the same features
    // (units differ by hash, so nothing is invalidated).
    cmd!(sh, "cargo fmt --manifest-path fuzz/Cargo.toml -- --check").run()?;
    cmd!(
        sh,
        "cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --no-default-features --all-targets -- -D warnings"
    )
    .run()?;
    report_free_disk(sh, "at the end");
    eprintln!("ci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Prints how much disk is free where the build writes, so that a CI run
/// that runs out of it shows how close each step came. It decides nothing:
/// a failed reading is printed as such.
fn report_free_disk(sh: &Shell, when: &str) {
    let target = xtask::target_dir();
    let at = if target.exists() { target } else { xtask::project_root() };
    match cmd!(sh, "df --human-readable --output=avail {at}").quiet().read() {
        Ok(out) => match out.lines().nth(1) {
            Some(avail) => eprintln!("ci: {} free on the disk of {} ({when})", avail.trim(), at.display()),
            None => eprintln!("ci: df printed no reading for {} ({when}): {out:?}", at.display()),
        },
        Err(err) => eprintln!("ci: could not read the free disk ({when}): {err}"),
    }
}
