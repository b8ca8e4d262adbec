//! `cargo xtask bench`'s comparison with Extism: runs the `vs_extism` bench
//! of `crates/wasmplug-extism-bench` (its own cargo workspace, so Extism's
//! wasmtime never enters the main workspace's builds) and returns the
//! markdown section `## Side by side with Extism`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use xshell::{cmd, Shell};

use crate::bench::{human, mean_ns};

/// One row: the same work on wasmplug and on Extism.
struct Row {
    case: &'static str,
    wasmplug: &'static str,
    extism: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        case: "call `noop` (no input, returns 0): wasmplug's stateless module, served by an idle instance",
        wasmplug: "extism_noop/wasmplug_stateless",
        extism: "extism_noop/extism",
    },
    Row {
        case: "call `noop`: wasmplug's module that writes a global, a fresh instance per call",
        wasmplug: "extism_noop/wasmplug_fresh_instance",
        extism: "extism_noop/extism",
    },
    Row {
        case: "`echo` 1 KiB: wasmplug's bytes ABI, a fresh instance per call (its default for a module that writes memory)",
        wasmplug: "extism_echo/wasmplug/1024",
        extism: "extism_echo/extism/1024",
    },
    Row {
        case: "`echo` 64 KiB: wasmplug's bytes ABI, a fresh instance per call",
        wasmplug: "extism_echo/wasmplug/65536",
        extism: "extism_echo/extism/65536",
    },
    Row {
        case: "`echo` 1 KiB: wasmplug reusing one instance, as Extism does",
        wasmplug: "extism_echo/wasmplug_reuse/1024",
        extism: "extism_echo/extism/1024",
    },
    Row {
        case: "`echo` 64 KiB: wasmplug reusing one instance",
        wasmplug: "extism_echo/wasmplug_reuse/65536",
        extism: "extism_echo/extism/65536",
    },
    Row {
        case: "load `echo`: Extism's `Plugin::new` with a warm compile cache vs wasmplug's load from its disk cache",
        wasmplug: "extism_load/wasmplug_disk_cache",
        extism: "extism_load/extism_cache",
    },
    Row {
        case: "load `echo`: Extism's `Plugin::new` with its cache disabled vs wasmplug compiling",
        wasmplug: "extism_load/wasmplug_compile",
        extism: "extism_load/extism_no_cache",
    },
];

/// The bench's crate, relative to the project root.
const CRATE: &str = "crates/wasmplug-extism-bench";

/// Runs the bench (its own target directory, `extism-bench` inside the
/// project's) and returns the section.
pub fn run(sh: &Shell, quick: bool) -> anyhow::Result<String> {
    let timing = if quick {
        ["--warm-up-time", "1", "--measurement-time", "2"]
    } else {
        ["--warm-up-time", "2", "--measurement-time", "5"]
    };
    let root = xtask::project_root();
    let manifest = root.join(CRATE).join("Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("extism-bench");
    // `RUST_BACKTRACE=1` whatever the caller's environment says: users'
    // machines often have it, and with it an error built inside either host
    // captures a backtrace. Both hosts run in the one bench process, so they
    // share it. `CARGO_TARGET_DIR` too, not only `--target-dir`: criterion
    // puts its results under the former (else under the target directory
    // `cargo metadata` reports for the bench's own workspace).
    cmd!(
        sh,
        "cargo bench --manifest-path {manifest} --target-dir {target} --bench vs_extism -- {timing...}"
    )
    .env("RUST_BACKTRACE", "1")
    .env("CARGO_TARGET_DIR", &target)
    .run()?;
    let lock_path = root.join(CRATE).join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).with_context(|| format!("cannot read {}", lock_path.display()))?;
    let versions = Versions::from_lock(&lock)?;
    render(&target.join("criterion"), &versions)
}

/// What the bench ran, read from its Cargo.lock.
#[derive(Debug, PartialEq)]
struct Versions {
    extism: String,
    extism_wasmtime: String,
    wasmplug_wasmtime: String,
}

impl Versions {
    fn from_lock(lock: &str) -> anyhow::Result<Versions> {
        let packages = lock_packages(lock);
        let extism = packages
            .iter()
            .find(|package| package.name == "extism")
            .context("no extism in the bench's Cargo.lock")?;
        Ok(Versions {
            extism: extism.version.clone(),
            extism_wasmtime: dependency_version(&packages, "extism", "wasmtime")?,
            wasmplug_wasmtime: dependency_version(&packages, "wasmplug-runtime", "wasmtime")?,
        })
    }
}

/// One `[[package]]` of a Cargo.lock: what the section needs of it.
#[derive(Debug)]
struct LockPackage {
    name: String,
    version: String,
    /// As the lock writes them: `name`, or `name version` when the lock
    /// holds more than one version of `name`.
    dependencies: Vec<String>,
}

/// The packages of a Cargo.lock (its format is simple enough to read by
/// line, and xtask has no TOML parser).
fn lock_packages(lock: &str) -> Vec<LockPackage> {
    let mut packages = Vec::new();
    let mut in_dependencies = false;
    for line in lock.lines().map(str::trim) {
        if line == "[[package]]" {
            packages.push(LockPackage {
                name: String::new(),
                version: String::new(),
                dependencies: Vec::new(),
            });
            in_dependencies = false;
            continue;
        }
        let Some(package) = packages.last_mut() else {
            continue;
        };
        if in_dependencies {
            if line == "]" {
                in_dependencies = false;
            } else {
                package
                    .dependencies
                    .push(line.trim_end_matches(',').trim_matches('"').to_owned());
            }
        } else if let Some(name) = line.strip_prefix("name = ") {
            package.name = name.trim_matches('"').to_owned();
        } else if let Some(version) = line.strip_prefix("version = ") {
            package.version = version.trim_matches('"').to_owned();
        } else if line == "dependencies = [" {
            in_dependencies = true;
        }
    }
    packages
}

/// The version of `dependency` that `package` uses.
fn dependency_version(packages: &[LockPackage], package: &str, dependency: &str) -> anyhow::Result<String> {
    let entry = packages
        .iter()
        .find(|candidate| candidate.name == package)
        .with_context(|| format!("no {package} in the bench's Cargo.lock"))?
        .dependencies
        .iter()
        .find(|entry| entry.split_whitespace().next() == Some(dependency))
        .with_context(|| format!("{package} does not depend on {dependency} in the bench's Cargo.lock"))?;
    // `name version`, or `name version (source)` when sources differ too.
    if let Some(version) = entry.split_whitespace().nth(1) {
        return Ok(version.to_owned());
    }
    // A bare name: the lock holds one version of it.
    let mut versions = packages.iter().filter(|candidate| candidate.name == dependency);
    match (versions.next(), versions.next()) {
        (Some(only), None) => Ok(only.version.clone()),
        _ => anyhow::bail!("{package}'s {dependency} names no version, yet the lock has no single one"),
    }
}

fn render(criterion: &Path, versions: &Versions) -> anyhow::Result<String> {
    let Versions {
        extism,
        extism_wasmtime,
        wasmplug_wasmtime,
    } = versions;
    let mut out = String::from("## Side by side with Extism\n\n");
    let _ = write!(
        out,
        "`crates/wasmplug-extism-bench` (`vs_extism`): Extism {extism}'s Rust SDK (with wasmtime's default \
         features, which it needs, but not its HTTP client nor its HTTP and file-system host functions) on its own \
         wasmtime {extism_wasmtime}; wasmplug on wasmtime {wasmplug_wasmtime}. Both hosts run in one \
         process with `RUST_BACKTRACE=1` set explicitly (users' machines often have it; with it an error built \
         inside either host captures a backtrace). The guests are WAT: Extism's against its kernel imports, \
         copying 8 bytes at a time and the tail byte by byte as its PDKs do; wasmplug's against its bytes ABI. \
         Before timing, the bench checks that both give the same output for each case. Extism keeps one instance \
         per plugin across calls; its loads are `Plugin::new` (a new engine each time, and its kernel compiled \
         or fetched beside the guest). The ratio is Extism's time over wasmplug's.\n\n"
    );
    out.push_str("| case | wasmplug | Extism | Extism / wasmplug |\n|---|---|---|---|\n");
    for row in ROWS {
        let wasmplug = mean_ns(criterion, row.wasmplug)?;
        let extism = mean_ns(criterion, row.extism)?;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.case,
            human(wasmplug),
            human(extism),
            ratio(extism, wasmplug)
        );
    }
    out.push('\n');
    Ok(out)
}

/// Extism's time over wasmplug's, said as how many times faster (or
/// slower) wasmplug is.
fn ratio(extism_ns: f64, wasmplug_ns: f64) -> String {
    let ratio = extism_ns / wasmplug_ns;
    if ratio >= 1.0 {
        format!("{ratio:.2} (wasmplug {ratio:.1}x faster)")
    } else {
        format!("{ratio:.2} (wasmplug {:.1}x slower)", 1.0 / ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "extism"
version = "1.30.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "anyhow",
 "wasmtime 43.0.2",
]

[[package]]
name = "wasmplug-runtime"
version = "0.1.0"
dependencies = [
 "wasmtime 48.0.8 (registry+https://github.com/rust-lang/crates.io-index)",
 "wasmtime-wasi",
]

[[package]]
name = "wasmtime"
version = "43.0.2"

[[package]]
name = "wasmtime"
version = "48.0.8"
"#;

    #[test]
    fn versions_come_from_the_lock() {
        assert_eq!(
            Versions::from_lock(LOCK).unwrap(),
            Versions {
                extism: "1.30.0".into(),
                extism_wasmtime: "43.0.2".into(),
                wasmplug_wasmtime: "48.0.8".into(),
            }
        );
    }

    #[test]
    fn a_bare_dependency_takes_the_single_version() {
        let lock = "[[package]]\nname = \"extism\"\nversion = \"1.30.0\"\ndependencies = [\n \"wasmtime\",\n]\n\n\
                    [[package]]\nname = \"wasmtime\"\nversion = \"43.0.2\"\n";
        let packages = lock_packages(lock);
        assert_eq!(dependency_version(&packages, "extism", "wasmtime").unwrap(), "43.0.2");
        // Two versions and a bare name cannot be told apart.
        let two = format!("{lock}\n[[package]]\nname = \"wasmtime\"\nversion = \"48.0.8\"\n");
        assert!(dependency_version(&lock_packages(&two), "extism", "wasmtime").is_err());
        assert!(dependency_version(&packages, "extism", "wasmtime-wasi").is_err());
        assert!(Versions::from_lock(lock).is_err(), "the lock has no wasmplug-runtime");
    }

    #[test]
    fn the_ratio_says_faster_or_slower() {
        assert_eq!(ratio(3000.0, 1000.0), "3.00 (wasmplug 3.0x faster)");
        assert_eq!(ratio(1000.0, 4000.0), "0.25 (wasmplug 4.0x slower)");
        assert_eq!(ratio(1000.0, 1000.0), "1.00 (wasmplug 1.0x faster)");
    }

    #[test]
    fn the_table_reads_every_row_from_criterion() {
        let dir = tempfile::tempdir().unwrap();
        let versions = Versions::from_lock(LOCK).unwrap();
        // Each bench's mean is 1000 ns times its position in this list.
        let ids: Vec<&str> = ROWS.iter().flat_map(|row| [row.wasmplug, row.extism]).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        for (index, id) in unique.iter().enumerate() {
            let path = dir.path().join(id).join("new");
            std::fs::create_dir_all(&path).unwrap();
            let estimates = serde_json::json!({ "mean": { "point_estimate": 1000.0 * (index + 1) as f64 } });
            std::fs::write(path.join("estimates.json"), estimates.to_string()).unwrap();
        }
        let section = render(dir.path(), &versions).unwrap();
        assert!(section.starts_with("## Side by side with Extism\n"));
        assert!(section.contains("Extism 1.30.0"));
        assert!(section.contains("wasmtime 43.0.2"));
        assert!(section.contains("wasmplug on wasmtime 48.0.8"));
        assert!(section.contains("`RUST_BACKTRACE=1`"));
        let rows: Vec<&str> = section
            .lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| case"))
            .collect();
        assert_eq!(rows.len(), ROWS.len());
        let position = |id: &str| (unique.iter().position(|unique| *unique == id).unwrap() + 1) as f64;
        for (line, row) in rows.iter().zip(ROWS) {
            let wasmplug = 1000.0 * position(row.wasmplug);
            let extism = 1000.0 * position(row.extism);
            let expected = format!(
                "| {} | {} | {} | {} |",
                row.case,
                human(wasmplug),
                human(extism),
                ratio(extism, wasmplug)
            );
            assert_eq!(*line, expected);
        }

        // A missing result is an error that names it, not a blank cell.
        std::fs::remove_dir_all(dir.path().join("extism_load")).unwrap();
        let error = render(dir.path(), &versions).unwrap_err();
        let io = error.chain().find_map(|cause| cause.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound),
            "{error:#}"
        );
    }
}
