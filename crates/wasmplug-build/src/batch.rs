//! Compiling a folder of plugin sources (the repository's `cpp-plugins/`),
//! one module per `.c` or `.cpp` file, each built with the flags of its
//! leading `// wasmplug-build:` comment, on as many threads as there are
//! cores.
//!
//! A plugin is rebuilt only when its stamp (`<name>.wasm.stamp`, beside the
//! output) no longer matches: the stamp holds a hash of the toolchain, the
//! flags, the source and `wasmplug.h`, and a hash of the output it produced.
//! Outputs and stamps are written to temporary files and renamed into
//! place, so concurrent builds never see half a module.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sha2::{Digest as _, Sha256};
use xshell::{cmd, Shell};

use crate::{BuildComment, Toolchain};

/// Bumped when the way plugins are built changes in a way the stamp's other
/// inputs do not show.
const STAMP_VERSION: &str = "wasmplug-xtask-stamp-v1";

const HEADER: &str = "include/wasmplug.h";

/// Builds every plugin in `source_dir` (with `include/wasmplug.h`) whose
/// source, header, flags or compiler changed into `out_dir`, and returns
/// the paths of all of them, sorted. The compiler runs in `root`, and paths
/// in its arguments are relative to it, so the stamps do not change when
/// the checkout moves.
pub fn build_all(
    toolchain: &Toolchain,
    root: &Path,
    source_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let started = Instant::now();
    let header_path = source_dir.join(HEADER);
    let header = fs::read(&header_path).with_context(|| format!("cannot read {}", header_path.display()))?;
    let sources = find_sources(source_dir)?;
    fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;

    let jobs: Vec<Job<'_>> = sources
        .iter()
        .map(|source| Job::new(toolchain, root, source, source_dir, out_dir, &header))
        .collect();
    let outcomes = run_in_parallel(&jobs);

    let mut built = 0;
    let mut failures = Vec::new();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        match outcome {
            Ok(Outcome::UpToDate) => {}
            Ok(Outcome::Built) => built += 1,
            Err(error) => failures.push(format!("{}: {error:#}", job.source.path.display())),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} plugins failed to build:\n{}",
            failures.len(),
            jobs.len(),
            failures.join("\n")
        );
    }
    eprintln!(
        "plugins: {built} built, {} up to date, in {} ({:.2}s)",
        jobs.len() - built,
        out_dir.display(),
        started.elapsed().as_secs_f64()
    );
    let mut paths: Vec<PathBuf> = jobs.into_iter().map(|job| job.output).collect();
    paths.sort();
    Ok(paths)
}

/// One plugin source file and what its leading comment asks for.
struct Source {
    path: PathBuf,
    name: String,
    text: String,
    comment: BuildComment,
}

fn find_sources(source_dir: &Path) -> anyhow::Result<Vec<Source>> {
    let entries = fs::read_dir(source_dir).with_context(|| format!("cannot list {}", source_dir.display()))?;
    let mut sources: Vec<Source> = Vec::new();
    for entry in entries {
        let path = entry.context("cannot list the plugin sources")?.path();
        let is_source = matches!(
            path.extension().and_then(|extension| extension.to_str()),
            Some("c" | "cpp" | "cc" | "cxx")
        );
        if !is_source || !path.is_file() {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .with_context(|| format!("plugin file name is not UTF-8: {}", path.display()))?
            .to_owned();
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let comment = BuildComment::parse(&text).with_context(|| format!("{}", path.display()))?;
        if let Some(other) = sources.iter().find(|source| source.name == name) {
            bail!(
                "two plugins would both be `{name}.wasm`: {} and {}",
                other.path.display(),
                path.display()
            );
        }
        sources.push(Source {
            path,
            name,
            text,
            comment,
        });
    }
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sources)
}

enum Outcome {
    UpToDate,
    Built,
}

/// Everything needed to build one plugin, worked out before any thread
/// starts.
struct Job<'a> {
    toolchain: &'a Toolchain,
    root: &'a Path,
    source: &'a Source,
    /// Arguments to the compiler, except `-o <output>`.
    arguments: Vec<String>,
    output: PathBuf,
    stamp: PathBuf,
    /// Hash of everything that goes into the build.
    input_hash: String,
}

impl<'a> Job<'a> {
    fn new(
        toolchain: &'a Toolchain,
        root: &'a Path,
        source: &'a Source,
        source_dir: &Path,
        out_dir: &Path,
        header: &[u8],
    ) -> Job<'a> {
        // Relative to the root, where the compiler runs, so the stamps do
        // not change when the checkout moves.
        let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).display().to_string();
        let mut arguments = toolchain.base_flags.clone();
        arguments.push(format!("-I{}", relative(&source_dir.join("include"))));
        arguments.extend(source.comment.flags.iter().cloned());
        // wasm-ld names the module after its output file, which is a random
        // temporary name here; name it after the plugin so builds are
        // reproducible and backtraces read well.
        arguments.push(format!("-Wl,--soname={}", source.name));
        arguments.push(relative(&source.path));

        let compiler = toolchain.compiler_for(&source.path);
        let mut hasher = Sha256::new();
        for part in [
            STAMP_VERSION.as_bytes(),
            toolchain.fingerprint.as_bytes(),
            compiler.as_os_str().as_encoded_bytes(),
        ] {
            hash_part(&mut hasher, part);
        }
        for argument in &arguments {
            hash_part(&mut hasher, argument.as_bytes());
        }
        for module in &source.comment.allowed_import_modules {
            hash_part(&mut hasher, module.as_bytes());
        }
        hash_part(&mut hasher, source.text.as_bytes());
        hash_part(&mut hasher, header);

        let output = out_dir.join(format!("{}.wasm", source.name));
        let stamp = out_dir.join(format!("{}.wasm.stamp", source.name));
        Job {
            toolchain,
            root,
            source,
            arguments,
            output,
            stamp,
            input_hash: hex::encode(hasher.finalize()),
        }
    }

    fn run(&self) -> anyhow::Result<Outcome> {
        if self.is_up_to_date() {
            return Ok(Outcome::UpToDate);
        }
        let sh = Shell::new()?;
        sh.change_dir(self.root);
        let started = Instant::now();
        let out_dir = self.output.parent().context("output has no directory")?;
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.", self.source.name))
            .suffix(".wasm.tmp")
            .tempfile_in(out_dir)
            .context("cannot create a temporary output file")?;
        let temporary_path = temporary.path().to_path_buf();

        let compiler = self.toolchain.compiler_for(&self.source.path);
        let arguments = &self.arguments;
        let compiled = cmd!(sh, "{compiler} {arguments...} -o {temporary_path}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("cannot run {}", compiler.display()))?;
        let diagnostics = String::from_utf8_lossy(&compiled.stderr);
        if !compiled.status.success() {
            bail!(
                "{} failed ({}):\n$ {} {} -o {}\n{}",
                compiler.display(),
                compiled.status,
                compiler.display(),
                arguments.join(" "),
                temporary_path.display(),
                diagnostics.trim_end()
            );
        }

        let bytes = fs::read(&temporary_path).context("cannot read the compiled module")?;
        crate::check_imports(&bytes, &self.source.comment.allowed_import_modules)?;
        temporary
            .persist(&self.output)
            .with_context(|| format!("cannot move the module to {}", self.output.display()))?;
        let output_hash = hex::encode(Sha256::digest(&bytes));
        write_atomically(&self.stamp, format!("{}\n{output_hash}\n", self.input_hash).as_bytes())?;

        eprintln!(
            "   built {} ({:.1} KiB, {})",
            self.output.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len() as f64 / 1024.0,
            format_duration(started.elapsed())
        );
        if !diagnostics.trim().is_empty() {
            eprintln!("{}", diagnostics.trim_end());
        }
        Ok(Outcome::Built)
    }

    fn is_up_to_date(&self) -> bool {
        let Ok(stamp) = fs::read_to_string(&self.stamp) else {
            return false;
        };
        let mut lines = stamp.lines();
        let (Some(input_hash), Some(output_hash)) = (lines.next(), lines.next()) else {
            return false;
        };
        if input_hash != self.input_hash {
            return false;
        }
        // The output is checked too, so a module that was edited or
        // truncated by hand is rebuilt rather than trusted.
        fs::read(&self.output).is_ok_and(|bytes| hex::encode(Sha256::digest(&bytes)) == output_hash)
    }
}

/// Runs every job on up to one thread per core and returns the outcomes in
/// job order.
fn run_in_parallel(jobs: &[Job<'_>]) -> Vec<anyhow::Result<Outcome>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(jobs.len());
    let next_job = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<anyhow::Result<Outcome>>>> = Mutex::new(jobs.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next_job.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(index) else {
                    break;
                };
                let outcome = job.run();
                outcomes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(outcome);
            });
        }
    });
    outcomes
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(anyhow::anyhow!("the build thread stopped early"))))
        .collect()
}

/// Feeds one length-prefixed part to the hasher, so parts cannot run into
/// each other.
fn hash_part(hasher: &mut Sha256, part: &[u8]) {
    hasher.update((part.len() as u64).to_le_bytes());
    hasher.update(part);
}

fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("path has no directory")?;
    let mut temporary = tempfile::Builder::new()
        .prefix(".stamp.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temporary.write_all(contents).context("cannot write the stamp")?;
    temporary
        .persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn format_duration(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}
