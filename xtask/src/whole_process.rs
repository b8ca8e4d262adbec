//! `cargo xtask bench`'s whole-process comparison: the seed's command
//! (`wasmedge --reactor plugin.wasm process 21`, or wasmtime's equivalent
//! when WasmEdge is not installed) against `wasmplug run plugin.wasm
//! process 21`, each started from scratch by hyperfine, on the seed plugin
//! built with the seed's own clang++ line. Returns the markdown section
//! ``## Whole process: `wasmplug run` against the seed's command``; with
//! neither engine installed the section says so instead of giving figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _};
use serde_json::Value;
use wasmplug_build::toolchain::find_program;
use xshell::{cmd, Shell};

use crate::bench::human;

/// The section's heading.
const HEADING: &str = "## Whole process: `wasmplug run` against the seed's command";

/// The seed's compile flags, after `--target=wasm32-wasi` (which the
/// toolchain's base flags carry).
const SEED_FLAGS: &[&str] = &["-nostdlib", "-Wl,--no-entry", "-Wl,--export=process", "-O3"];

/// Where the seed plugin's source lives, relative to the project root.
const SOURCE: &str = "cpp-plugins/process.cpp";

/// What `process(21)` prints, on both engines.
const EXPECTED: &str = "43";

/// hyperfine's runs before timing, and timed runs, per command and round.
const WARMUP: &str = "10";
const RUNS: &str = "60";

/// How many times hyperfine times the commands. The machine's speed drifts
/// from second to second, and hyperfine runs one command's runs together,
/// so the commands take turns: each round times all of them (in the
/// opposite order to the round before), and the ratio is the median of the
/// rounds' ratios.
const ROUNDS: usize = 5;

/// `wasmplug run`'s arguments, run in the plugin's directory.
const WASMPLUG_ARGS: &[&str] = &["run", "plugin.wasm", "process", "21"];

/// The same with nothing kept between runs: every run compiles the module.
const WASMPLUG_NO_CACHE_ARGS: &[&str] = &["run", "--no-cache", "plugin.wasm", "process", "21"];

/// The seed's command on one engine.
#[derive(Debug, Clone, PartialEq)]
struct Baseline {
    /// The engine as its project spells it.
    engine: &'static str,
    /// The program's name on `PATH`, as the command is written.
    name: &'static str,
    /// Where it was found.
    program: PathBuf,
    /// Its arguments, run in the plugin's directory.
    args: &'static [&'static str],
}

impl Baseline {
    /// WasmEdge (the seed's own engine) if it is on `PATH`, else wasmtime.
    fn find() -> Option<Baseline> {
        let engines: [(&str, &str, &[&str]); 2] = [
            ("WasmEdge", "wasmedge", &["--reactor", "plugin.wasm", "process", "21"]),
            (
                "wasmtime",
                "wasmtime",
                &["run", "--invoke", "process", "plugin.wasm", "21"],
            ),
        ];
        engines.into_iter().find_map(|(engine, name, args)| {
            find_program(name).map(|program| Baseline {
                engine,
                name,
                program,
                args,
            })
        })
    }

    /// The command as a reader would type it.
    fn command(&self) -> String {
        format!("{} {}", self.name, self.args.join(" "))
    }
}

/// hyperfine's figures for one command, in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Timing {
    /// The command's name as given to hyperfine (`--command-name`).
    command: String,
    mean: f64,
    stddev: f64,
    median: f64,
    min: f64,
    max: f64,
    /// Mean user CPU time per run.
    user: f64,
    /// Mean system CPU time per run.
    system: f64,
}

/// One command's figures over the rounds, in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    command: String,
    /// The median of the rounds' medians.
    median: f64,
    /// The lowest and highest of the rounds' medians.
    lowest: f64,
    highest: f64,
    /// Mean user and system CPU time per run, over every round.
    user: f64,
    system: f64,
}

impl Summary {
    /// `rounds`: one command's timing in each round (none is an error).
    fn of(rounds: &[&Timing]) -> anyhow::Result<Summary> {
        let first = rounds.first().context("no rounds")?;
        let medians: Vec<f64> = rounds.iter().map(|timing| timing.median).collect();
        let count = rounds.len() as f64;
        Ok(Summary {
            command: first.command.clone(),
            median: median(&medians)?,
            lowest: medians.iter().copied().fold(f64::INFINITY, f64::min),
            highest: medians.iter().copied().fold(0.0, f64::max),
            user: rounds.iter().map(|timing| timing.user).sum::<f64>() / count,
            system: rounds.iter().map(|timing| timing.system).sum::<f64>() / count,
        })
    }
}

/// The median of `values`; an error when there are none.
fn median(values: &[f64]) -> anyhow::Result<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    Ok(match values.len() {
        0 => bail!("no figures to take the median of"),
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    })
}

/// Each round's `ours` median over its `baseline` median, and their median.
fn ratio_of_rounds(rounds: &[[Timing; 3]], ours: usize, baseline: usize) -> anyhow::Result<f64> {
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|round| round[ours].median / round[baseline].median)
        .collect();
    median(&ratios)
}

/// Everything the section reports.
#[derive(Debug)]
struct Measured {
    baseline: Baseline,
    /// `--version` of each program, without the program's name.
    baseline_version: String,
    wasmplug_version: String,
    hyperfine_version: String,
    /// The line the plugin was compiled with, as a reader would type it.
    compile_line: String,
    baseline_timing: Summary,
    wasmplug_timing: Summary,
    /// `wasmplug run --no-cache`: for information, no target.
    no_cache_timing: Summary,
    /// The median over rounds of wasmplug's median over the seed's.
    ratio: f64,
    /// The same for `--no-cache`.
    no_cache_ratio: f64,
}

/// Times both commands and returns the section; with neither WasmEdge nor
/// wasmtime on `PATH`, a section that says the comparison was not run.
pub fn run(sh: &Shell) -> anyhow::Result<String> {
    let Some(baseline) = Baseline::find() else {
        eprintln!("whole process: neither wasmedge nor wasmtime is on PATH; not compared");
        return Ok(skipped());
    };
    let hyperfine = xtask::ensure_hyperfine()?;
    cmd!(sh, "cargo build --release --quiet --package wasmplug-cli").run()?;
    let measured = measure(sh, &hyperfine, &baseline, &xtask::release_binary())?;
    Ok(render(&measured))
}

/// The section when there is nothing to compare against.
fn skipped() -> String {
    format!(
        "{HEADING}\n\nNot run: neither `wasmedge` (the seed's engine) nor `wasmtime` is on `PATH`, so there is no \
         baseline to time `wasmplug run` against. This is a skip, not a pass; install either and run `cargo xtask \
         bench` again.\n"
    )
}

/// Builds the seed plugin into a temporary directory, checks that both
/// commands print [`EXPECTED`], and times them with hyperfine.
fn measure(sh: &Shell, hyperfine: &Path, baseline: &Baseline, wasmplug: &Path) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let compile_line = build_seed_plugin(sh, dir.path())?;
    let wasmplug_name = format!("wasmplug {}", WASMPLUG_ARGS.join(" "));
    let no_cache_name = format!("wasmplug {}", WASMPLUG_NO_CACHE_ARGS.join(" "));
    let baseline_name = baseline.command();
    let mut rounds: Vec<[Timing; 3]> = Vec::new();
    {
        let _in_plugin_dir = sh.push_dir(dir.path());
        // `wasmplug run` keeps compiled modules under `$XDG_CACHE_HOME`:
        // one of the bench's own, empty at first, so the first (checking)
        // run compiles, and nothing of the user's is read or written.
        let _cache = sh.push_env("XDG_CACHE_HOME", dir.path().join("cache"));
        check_prints_expected(sh, &baseline.program, baseline.args)?;
        check_prints_expected(sh, wasmplug, WASMPLUG_ARGS)?;
        check_prints_expected(sh, wasmplug, WASMPLUG_NO_CACHE_ARGS)?;
        let commands = [
            (baseline_name.clone(), command_line(&baseline.program, baseline.args)),
            (wasmplug_name.clone(), command_line(wasmplug, WASMPLUG_ARGS)),
            (no_cache_name.clone(), command_line(wasmplug, WASMPLUG_NO_CACHE_ARGS)),
        ];
        for round in 0..ROUNDS {
            let export = dir.path().join(format!("hf-{round}.json"));
            let mut order: Vec<&(String, String)> = commands.iter().collect();
            if round % 2 == 1 {
                order.reverse();
            }
            let args: Vec<&str> = order
                .iter()
                .flat_map(|(name, line)| ["--command-name", name.as_str(), line.as_str()])
                .collect();
            cmd!(
                sh,
                "{hyperfine} -N --warmup {WARMUP} --runs {RUNS} --export-json {export} {args...}"
            )
            .run()
            .context("hyperfine failed")?;
            let json = std::fs::read_to_string(&export).with_context(|| format!("cannot read {}", export.display()))?;
            let timings =
                parse_hyperfine(&json).with_context(|| format!("cannot read hyperfine's {}", export.display()))?;
            let find = |name: &str| {
                timings
                    .iter()
                    .find(|timing| timing.command == name)
                    .cloned()
                    .with_context(|| format!("hyperfine reported no `{name}` in round {}", round + 1))
            };
            rounds.push([find(&baseline_name)?, find(&wasmplug_name)?, find(&no_cache_name)?]);
        }
    }
    let of = |index: usize| Summary::of(&rounds.iter().map(|round| &round[index]).collect::<Vec<_>>());
    Ok(Measured {
        baseline_version: version(sh, &baseline.program)?,
        wasmplug_version: version(sh, wasmplug)?,
        hyperfine_version: version(sh, hyperfine)?,
        baseline: baseline.clone(),
        compile_line,
        baseline_timing: of(0)?,
        wasmplug_timing: of(1)?,
        no_cache_timing: of(2)?,
        ratio: ratio_of_rounds(&rounds, 1, 0)?,
        no_cache_ratio: ratio_of_rounds(&rounds, 2, 0)?,
    })
}

/// Compiles `cpp-plugins/process.cpp` to `<dir>/plugin.wasm` with the
/// seed's flags and the toolchain's clang++; returns the line as typed.
fn build_seed_plugin(sh: &Shell, dir: &Path) -> anyhow::Result<String> {
    let toolchain = xtask::ensure_toolchain()?;
    let compiler = &toolchain.cpp_compiler;
    let base_flags = &toolchain.base_flags;
    let source = xtask::project_root().join(SOURCE);
    let output = dir.join("plugin.wasm");
    cmd!(sh, "{compiler} {base_flags...} {SEED_FLAGS...} {source} -o {output}")
        .run()
        .context("cannot compile the seed plugin")?;
    let compiler_name = compiler.file_name().unwrap_or(compiler.as_os_str()).to_string_lossy();
    Ok(format!(
        "{compiler_name} {} {} {SOURCE} -o plugin.wasm",
        base_flags.join(" "),
        SEED_FLAGS.join(" ")
    ))
}

/// Runs `program args` once in the shell's directory and fails unless it
/// exits successfully printing [`EXPECTED`] (trimmed) on stdout.
fn check_prints_expected(sh: &Shell, program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = cmd!(sh, "{program} {args...}").quiet().ignore_status().output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || stdout.trim() != EXPECTED {
        bail!(
            "`{} {}` must print {EXPECTED}, but it {} with stdout {:?} and stderr {:?}",
            program.display(),
            args.join(" "),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A command line for hyperfine's `-N`, which splits it as a POSIX shell
/// would (without running one): each word quoted when it needs to be.
fn command_line(program: &Path, args: &[&str]) -> String {
    let program = program.to_string_lossy();
    std::iter::once(program.as_ref())
        .chain(args.iter().copied())
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                word.to_owned()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `program --version`'s first line without the program's name: what
/// follows ` version ` (WasmEdge prints its path, then that), else what
/// follows the first space (`wasmtime 25.0.1 (…)`, `wasmplug 0.1.0`).
fn version(sh: &Shell, program: &Path) -> anyhow::Result<String> {
    let text = cmd!(sh, "{program} --version")
        .quiet()
        .read()
        .with_context(|| format!("`{} --version` failed", program.display()))?;
    version_from(&text).with_context(|| format!("`{} --version` printed nothing", program.display()))
}

fn version_from(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    let version = line
        .split_once(" version ")
        .or_else(|| line.split_once(' '))
        .map_or(line, |(_, rest)| rest)
        .trim();
    (!version.is_empty()).then(|| version.to_owned())
}

/// hyperfine's `--export-json` results, in the order of the commands. A
/// missing or non-numeric field is an error, never a zero.
fn parse_hyperfine(json: &str) -> anyhow::Result<Vec<Timing>> {
    let value: Value = serde_json::from_str(json).context("not JSON")?;
    let results = value["results"].as_array().context("no `results` array")?;
    results
        .iter()
        .enumerate()
        .map(|(index, result)| {
            let command = result["command"]
                .as_str()
                .with_context(|| format!("result {index} has no `command`"))?
                .to_owned();
            let seconds = |field: &str| {
                result[field]
                    .as_f64()
                    .with_context(|| format!("result {index} (`{command}`) has no number `{field}`"))
            };
            let timing = Timing {
                mean: seconds("mean")?,
                stddev: seconds("stddev")?,
                median: seconds("median")?,
                min: seconds("min")?,
                max: seconds("max")?,
                user: seconds("user")?,
                system: seconds("system")?,
                command: command.clone(),
            };
            ensure!(
                timing.min > 0.0
                    && timing.min <= timing.median
                    && timing.median <= timing.max
                    && timing.min <= timing.mean
                    && timing.mean <= timing.max,
                "result {index} (`{command}`) is inconsistent: min {}, median {}, mean {}, max {}",
                timing.min,
                timing.median,
                timing.mean,
                timing.max
            );
            Ok(timing)
        })
        .collect()
}

fn render(measured: &Measured) -> String {
    let Measured {
        baseline,
        baseline_version,
        wasmplug_version,
        hyperfine_version,
        compile_line,
        baseline_timing,
        wasmplug_timing,
        no_cache_timing,
        ratio,
        no_cache_ratio,
    } = measured;
    let mut out = format!("{HEADING}\n\n");
    let _ = write!(
        out,
        "The seed's command, `{}` ({} {baseline_version}), against `wasmplug {}` (wasmplug {wasmplug_version}, \
         release build). Each is a whole process: start, load the module, call `process(21)`, print `43`, exit. \
         hyperfine {hyperfine_version} starts each directly (`-N`, no shell in between) in the plugin's directory; \
         before timing, each command is run once and must print `43`. The commands take turns over {ROUNDS} \
         rounds (each round times all three, in the opposite order to the round before: {WARMUP} warm-up runs then \
         {RUNS} timed runs each); a command's median is the median of its rounds' medians, and the ratio is the \
         median of the rounds' ratios. The plugin is built with the seed's own line: `{compile_line}`. User and system are CPU time per \
         run. Like `wasmtime run`, `wasmplug run` keeps the compiled module on disk (here in a directory of the \
         bench's own, filled by the check run), so a timed run loads it rather than compiling it; the \
         `--no-cache` row compiles on every run, for information.\n\n",
        baseline.command(),
        baseline.engine,
        WASMPLUG_ARGS.join(" "),
    );
    out.push_str("| command | median | rounds' medians | user | system |\n|---|---|---|---|---|\n");
    for timing in [baseline_timing, wasmplug_timing, no_cache_timing] {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} to {} | {} | {} |",
            timing.command,
            human(timing.median * 1e9),
            human(timing.lowest * 1e9),
            human(timing.highest * 1e9),
            human(timing.user * 1e9),
            human(timing.system * 1e9)
        );
    }
    let _ = writeln!(
        out,
        "\nwasmplug's median over the seed's: {ratio:.2}x. Target: ≤ 1.00x (no slower than the seed's command): \
         **{}**.",
        if *ratio <= 1.0 { "met" } else { "NOT met" }
    );
    let _ = writeln!(
        out,
        "Compiling on every run (`--no-cache`) over the seed's: {no_cache_ratio:.2}x (information)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hyperfine 1.15 writes with `--export-json` (two commands, three
    /// runs each).
    const SAMPLE: &str = r#"{
  "results": [
    {
      "command": "wasmedge --reactor plugin.wasm process 21",
      "mean": 0.012,
      "stddev": 0.0005,
      "median": 0.0118,
      "user": 0.006,
      "system": 0.004,
      "min": 0.0114,
      "max": 0.0128,
      "times": [0.0114, 0.0118, 0.0128],
      "exit_codes": [0, 0, 0]
    },
    {
      "command": "wasmplug run plugin.wasm process 21",
      "mean": 0.0041,
      "stddev": 0.0002,
      "median": 0.004,
      "user": 0.002,
      "system": 0.0015,
      "min": 0.0039,
      "max": 0.0044,
      "times": [0.0039, 0.004, 0.0044],
      "exit_codes": [0, 0, 0]
    }
  ]
}"#;

    fn timing(command: &str, median: f64) -> Timing {
        Timing {
            command: command.into(),
            mean: median * 1.01,
            stddev: median / 20.0,
            median,
            min: median * 0.9,
            max: median * 1.2,
            user: median / 2.0,
            system: median / 3.0,
        }
    }

    /// Three rounds in which wasmplug's median over the seed's is `ratio`
    /// × 0.9, × 1 and × 1.2: the median ratio is `ratio`.
    fn measured(baseline_median: f64, wasmplug_median: f64) -> Measured {
        let rounds: Vec<[Timing; 3]> = [0.9, 1.0, 1.2]
            .into_iter()
            .map(|factor| {
                [
                    timing("wasmedge --reactor plugin.wasm process 21", baseline_median),
                    timing("wasmplug run plugin.wasm process 21", wasmplug_median * factor),
                    timing("wasmplug run --no-cache plugin.wasm process 21", wasmplug_median * 1.5),
                ]
            })
            .collect();
        let of = |index: usize| Summary::of(&rounds.iter().map(|round| &round[index]).collect::<Vec<_>>()).unwrap();
        Measured {
            baseline: Baseline {
                engine: "WasmEdge",
                name: "wasmedge",
                program: "/opt/wasmedge/bin/wasmedge".into(),
                args: &["--reactor", "plugin.wasm", "process", "21"],
            },
            baseline_version: "0.14.1".into(),
            wasmplug_version: "0.1.0".into(),
            hyperfine_version: "1.15.0".into(),
            compile_line: "clang++-19 --target=wasm32-wasi -nostdlib -Wl,--no-entry -Wl,--export=process -O3 \
                           cpp-plugins/process.cpp -o plugin.wasm"
                .into(),
            baseline_timing: of(0),
            wasmplug_timing: of(1),
            no_cache_timing: of(2),
            ratio: ratio_of_rounds(&rounds, 1, 0).unwrap(),
            no_cache_ratio: ratio_of_rounds(&rounds, 2, 0).unwrap(),
        }
    }

    #[test]
    fn hyperfine_json_is_read_in_order() {
        let timings = parse_hyperfine(SAMPLE).unwrap();
        assert_eq!(timings.len(), 2);
        let seed = &timings[0];
        assert_eq!(seed.command, "wasmedge --reactor plugin.wasm process 21");
        assert_eq!(
            (
                seed.mean,
                seed.stddev,
                seed.median,
                seed.min,
                seed.max,
                seed.user,
                seed.system
            ),
            (0.012, 0.0005, 0.0118, 0.0114, 0.0128, 0.006, 0.004)
        );
        let ours = &timings[1];
        assert_eq!(ours.command, "wasmplug run plugin.wasm process 21");
        assert_eq!(ours.median, 0.004);
        assert_eq!(ours.system, 0.0015);
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_zero() {
        for field in ["command", "mean", "stddev", "median", "min", "max", "user", "system"] {
            let mut json: Value = serde_json::from_str(SAMPLE).unwrap();
            json["results"][1].as_object_mut().unwrap().remove(field);
            let error = parse_hyperfine(&json.to_string()).unwrap_err();
            assert!(
                format!("{error:#}").contains(&format!("`{field}`")),
                "{field}: {error:#}"
            );
        }
        // hyperfine writes `null` for a standard deviation it cannot give.
        let mut json: Value = serde_json::from_str(SAMPLE).unwrap();
        json["results"][0]["stddev"] = Value::Null;
        assert!(parse_hyperfine(&json.to_string()).is_err());
        assert!(parse_hyperfine("{}").is_err());
        assert!(parse_hyperfine("not json").is_err());
    }

    #[test]
    fn inconsistent_figures_are_an_error() {
        let mut json: Value = serde_json::from_str(SAMPLE).unwrap();
        json["results"][0]["median"] = 0.5.into();
        assert!(parse_hyperfine(&json.to_string()).is_err());
    }

    #[test]
    fn the_target_is_met_only_at_or_below_one() {
        let verdict = |baseline: f64, wasmplug: f64| {
            let section = render(&measured(baseline, wasmplug));
            section
                .lines()
                .find(|line| line.starts_with("wasmplug's median over the seed's"))
                .unwrap()
                .to_owned()
        };
        let faster = verdict(0.010, 0.004);
        assert!(faster.contains(": 0.40x."), "{faster}");
        assert!(faster.ends_with("**met**."), "{faster}");
        let equal = verdict(0.010, 0.010);
        assert!(equal.contains(": 1.00x."), "{equal}");
        assert!(equal.ends_with("**met**."), "{equal}");
        let slower = verdict(0.010, 0.0102);
        assert!(slower.contains(": 1.02x."), "{slower}");
        assert!(slower.ends_with("**NOT met**."), "{slower}");
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_ratios() {
        // Per round: 2/10, 12/10 and 9/10. The medians of each command
        // (10 and 9) would give 0.9 as well, so the second set tells them
        // apart: per round 1/10, 30/10, 3/1 -> ratios 0.1, 3, 3 -> 3.
        let round = |seed: f64, ours: f64| [timing("seed", seed), timing("ours", ours), timing("no cache", ours)];
        let rounds = [round(10.0, 2.0), round(10.0, 12.0), round(10.0, 9.0)];
        assert!((ratio_of_rounds(&rounds, 1, 0).unwrap() - 0.9).abs() < 1e-12);
        let rounds = [round(10.0, 1.0), round(10.0, 30.0), round(1.0, 3.0)];
        assert_eq!(ratio_of_rounds(&rounds, 1, 0).unwrap(), 3.0);
        assert!(median(&[]).is_err());
        assert!(Summary::of(&[]).is_err());
    }

    #[test]
    fn the_section_names_what_it_compared() {
        let section = render(&measured(0.010, 0.004));
        assert!(section.starts_with(&format!("{HEADING}\n\n")));
        assert!(section.contains("`wasmedge --reactor plugin.wasm process 21` (WasmEdge 0.14.1)"));
        assert!(section.contains("(wasmplug 0.1.0, release build)"));
        assert!(section.contains("hyperfine 1.15.0"));
        assert!(section.contains("`-N`"));
        assert!(section.contains("-Wl,--export=process -O3 cpp-plugins/process.cpp -o plugin.wasm`"));
        let rows: Vec<&str> = section.lines().filter(|line| line.starts_with("| `")).collect();
        assert_eq!(
            rows,
            [
                "| `wasmedge --reactor plugin.wasm process 21` | 10.00 ms | 10.00 ms to 10.00 ms | 5.00 ms | 3.33 ms |",
                // Rounds at 3.6, 4.0 and 4.8 ms: user and system are their means' halves and thirds.
                "| `wasmplug run plugin.wasm process 21` | 4.00 ms | 3.60 ms to 4.80 ms | 2.07 ms | 1.38 ms |",
                "| `wasmplug run --no-cache plugin.wasm process 21` | 6.00 ms | 6.00 ms to 6.00 ms | 3.00 ms | 2.00 ms |",
            ]
        );
        assert!(
            section.contains("(`--no-cache`) over the seed's: 0.60x (information)."),
            "{section}"
        );
        assert!(skipped().starts_with(&format!("{HEADING}\n\nNot run: neither `wasmedge`")));
    }

    #[test]
    fn a_command_must_print_exactly_the_result() {
        let sh = Shell::new().unwrap();
        let echo = find_program("echo").expect("echo on PATH");
        check_prints_expected(&sh, &echo, &["43"]).unwrap();
        for wrong in [&["42"][..], &["43", "43"], &[]] {
            let error = check_prints_expected(&sh, &echo, wrong).unwrap_err();
            assert!(format!("{error:#}").contains("must print 43"), "{error:#}");
        }
        let fails = find_program("false").expect("false on PATH");
        assert!(check_prints_expected(&sh, &fails, &[]).is_err());
    }

    #[test]
    fn versions_lose_the_program_name() {
        assert_eq!(
            version_from("/opt/wasmedge/bin/wasmedge version 0.14.1\n (plugin \"wasi_logging\") version 0.1.0.0\n")
                .as_deref(),
            Some("0.14.1")
        );
        assert_eq!(
            version_from("wasmtime 25.0.1 (b4b1d4b 2024-09-24)\n").as_deref(),
            Some("25.0.1 (b4b1d4b 2024-09-24)")
        );
        assert_eq!(version_from("wasmplug 0.1.0\n").as_deref(), Some("0.1.0"));
        assert_eq!(version_from(""), None);
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        assert_eq!(
            command_line(Path::new("/usr/bin/wasmedge"), &["--reactor", "plugin.wasm"]),
            "/usr/bin/wasmedge --reactor plugin.wasm"
        );
        assert_eq!(
            command_line(Path::new("/home/a b/it's/wasmplug"), &["run"]),
            r"'/home/a b/it'\''s/wasmplug' run"
        );
    }

    /// The whole measurement against binaries already built:
    /// `WHOLE_PROCESS_WASMPLUG=/path/to/release/wasmplug cargo test -p xtask
    /// whole_process -- --ignored --nocapture`, with wasmedge or wasmtime on
    /// `PATH`.
    #[test]
    #[ignore = "needs hyperfine, wasmedge and a release wasmplug"]
    fn measures_against_built_binaries() {
        let wasmplug = std::env::var_os("WHOLE_PROCESS_WASMPLUG")
            .expect("WHOLE_PROCESS_WASMPLUG names the release wasmplug binary");
        let baseline = Baseline::find().expect("wasmedge or wasmtime on PATH");
        let hyperfine = find_program("hyperfine").expect("hyperfine on PATH");
        let sh = Shell::new().unwrap();
        let measured = measure(&sh, &hyperfine, &baseline, Path::new(&wasmplug)).unwrap();
        println!("{}", render(&measured));
    }
}
