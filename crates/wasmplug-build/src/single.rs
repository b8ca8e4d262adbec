//! One plugin from one or more C or C++ sources: the flags its kind needs
//! (or those of its `// wasmplug-build:` comment), the SDK header on the
//! include path, and a check that it imports nothing a host lacks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use wasmplug_inspect::{ModuleReport, Policy, Violation};

use crate::{BuildComment, Toolchain, HEADER};

/// What a plugin is built against, found from its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// No system header: no libc, no start code, nothing imported but the
    /// host's functions (`-nostdlib -Wl,--no-entry`). The seed's plugin.
    Freestanding,
    /// C with system headers: wasi-libc, built as a reactor
    /// (`-mexec-model=reactor`), so `_initialize` runs before the first call.
    Libc,
    /// C++ with system headers: libc++ and wasi-libc, as a reactor, without
    /// exceptions (`-fno-exceptions`).
    Libcxx,
}

impl PluginKind {
    /// The kind of a plugin made of `sources` (path and text): a system
    /// `#include <…>` anywhere makes it libc, or libc++ when any source is
    /// C++.
    pub fn detect(sources: &[(PathBuf, String)]) -> PluginKind {
        let system_headers = sources.iter().any(|(_, text)| {
            text.lines().any(|line| {
                line.trim_start()
                    .strip_prefix('#')
                    .is_some_and(|rest| rest.trim_start().starts_with("include") && rest.contains('<'))
            })
        });
        match (system_headers, sources.iter().any(|(path, _)| is_cpp(path))) {
            (false, _) => PluginKind::Freestanding,
            (true, false) => PluginKind::Libc,
            (true, true) => PluginKind::Libcxx,
        }
    }

    /// The compiler flags for this kind at `-O<opt_level>`.
    pub fn flags(self, opt_level: u8) -> Vec<String> {
        let opt = format!("-O{opt_level}");
        let flags: &[&str] = match self {
            PluginKind::Freestanding => &["-nostdlib", "-Wl,--no-entry"],
            PluginKind::Libc => &["-mexec-model=reactor", "-Wl,--strip-debug"],
            PluginKind::Libcxx => &["-mexec-model=reactor", "-fno-exceptions", "-Wl,--strip-debug"],
        };
        flags.iter().map(|flag| (*flag).to_owned()).chain([opt]).collect()
    }

    /// How `wasmplug build` names it.
    pub fn describe(self) -> &'static str {
        match self {
            PluginKind::Freestanding => "freestanding (no libc)",
            PluginKind::Libc => "libc (wasi-libc, reactor)",
            PluginKind::Libcxx => "libc++ (reactor)",
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The sources, compiled and linked into one module.
    pub sources: Vec<PathBuf>,
    /// The module to write; `None` for `<first source's stem>.wasm` in the
    /// current directory.
    pub output: Option<PathBuf>,
    /// Functions to export by name (`-Wl,--export=<name>`), besides those
    /// marked `WASMPLUG_EXPORT`.
    pub exports: Vec<String>,
    /// `-O0` to `-O3`; `None` for `-O2`. Not with a `// wasmplug-build:`
    /// comment, whose flags are used as they are.
    pub opt_level: Option<u8>,
    /// The most linear memory the module may declare (`-Wl,--max-memory`).
    pub max_memory: Option<u64>,
}

/// A built plugin.
#[derive(Debug, Clone)]
pub struct Built {
    /// Where the module was written: the output asked for, or, when it
    /// breaks the plugin contract, `<stem>.rejected.wasm` beside it (so a
    /// working plugin of that name is never replaced by a broken one).
    pub output: PathBuf,
    /// Its kind, unless the source's `// wasmplug-build:` comment chose the flags.
    pub kind: Option<PluginKind>,
    /// The compiler command line that built it.
    pub command: String,
    /// The module.
    pub bytes: Vec<u8>,
    /// The inspector's report on it.
    pub report: ModuleReport,
    /// What the plugin contract says of it.
    pub violations: Vec<Violation>,
}

impl Built {
    /// Whether it passes the plugin contract (and was written under the
    /// name asked for).
    pub fn passes(&self) -> bool {
        wasmplug_inspect::is_acceptable(&self.violations)
    }
}

/// The compiler refused the sources: its own diagnostics, whole, to show as
/// they are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{compiler} failed to build the plugin")]
pub struct CompileFailed {
    /// The compiler.
    pub compiler: String,
    /// The command line, as one could run it again.
    pub command: String,
    /// What the compiler printed.
    pub diagnostics: String,
}

/// Builds one plugin. The output is written whole or not at all, and never
/// over a source file.
pub fn build(toolchain: &Toolchain, options: &BuildOptions) -> anyhow::Result<Built> {
    let Some(first) = options.sources.first() else {
        bail!("no source file given");
    };
    if options.opt_level.is_some_and(|level| level > 3) {
        bail!("--opt-level takes 0 to 3");
    }
    let mut sources = Vec::new();
    for path in &options.sources {
        if !matches!(extension(path), Some("c" | "cpp" | "cc" | "cxx")) {
            bail!("{}: a plugin source ends in .c, .cpp, .cc or .cxx", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        sources.push((path.clone(), text));
    }
    for export in &options.exports {
        if export.is_empty() || !export.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("`{export}` is not a function name to export");
        }
    }
    let output = match &options.output {
        Some(output) => output.clone(),
        None => {
            let stem = first.file_stem().context("the source has no file name")?;
            PathBuf::from(format!("{}.wasm", stem.to_string_lossy()))
        }
    };
    if extension(&output) != Some("wasm") {
        bail!("{}: the module's name must end in .wasm", output.display());
    }
    if let Ok(resolved) = std::fs::canonicalize(&output) {
        if options
            .sources
            .iter()
            .any(|source| std::fs::canonicalize(source).ok() == Some(resolved.clone()))
        {
            bail!("{}: the output would overwrite a source", output.display());
        }
    }
    let comment = BuildComment::is_present(&sources[0].1);
    if comment && options.opt_level.is_some() {
        bail!(
            "{} sets its flags in its `// wasmplug-build:` comment; change -O there, not with --opt-level",
            first.display()
        );
    }
    let (kind, allowed_imports, comment_flags) = if comment {
        let comment = BuildComment::parse(&sources[0].1).with_context(|| format!("{}", first.display()))?;
        (None, comment.allowed_import_modules, Some(comment.flags))
    } else {
        (Some(PluginKind::detect(&sources)), Vec::new(), None)
    };
    let opt_level = options.opt_level.unwrap_or(2);
    let mut extra: Vec<String> = options
        .exports
        .iter()
        .map(|export| format!("-Wl,--export={export}"))
        .collect();
    if let Some(bytes) = options.max_memory {
        // wasm-ld takes a whole number of 64 KiB pages.
        extra.push(format!("-Wl,--max-memory={}", bytes.div_ceil(65536) * 65536));
    }

    let cpp = sources.iter().any(|(path, _)| is_cpp(path));
    let compiler = if cpp {
        &toolchain.cpp_compiler
    } else {
        &toolchain.c_compiler
    };
    // The SDK header, for sources that include "wasmplug.h" without a copy
    // beside them (a copy beside the source comes first).
    let include = tempfile::tempdir().context("cannot create a directory for wasmplug.h")?;
    std::fs::write(include.path().join("wasmplug.h"), HEADER).context("cannot write wasmplug.h")?;
    // wasm-ld names the module after its output file: build under the
    // final name, in a directory of its own beside it, then move it.
    let parent = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::tempdir_in(&parent).with_context(|| format!("cannot write in {}", parent.display()))?;
    let staged = staging
        .path()
        .join(output.file_name().context("the output has no file name")?);

    let mut compile = Compile {
        compiler,
        base: &toolchain.base_flags,
        flags: Vec::new(),
        include: include.path(),
        sources: &options.sources,
        cpp,
        output: &staged,
    };
    // The flags to try, in order: the comment's; or the detected kind's,
    // and for a freestanding plugin, with bulk memory (clang may turn copy
    // and fill loops into memcpy and memset, which nothing provides without
    // libc), then as a libc reactor (a local header may include a system
    // one). The first that builds wins; if none does, the first failure is
    // the one shown.
    let attempts: Vec<(Option<PluginKind>, Vec<String>)> = match (comment_flags, kind) {
        (Some(flags), _) => vec![(None, flags)],
        (None, Some(PluginKind::Freestanding)) => {
            let plain = PluginKind::Freestanding.flags(opt_level);
            let mut bulk = plain.clone();
            bulk.insert(2, "-mbulk-memory".into());
            let libc = if cpp { PluginKind::Libcxx } else { PluginKind::Libc };
            vec![
                (Some(PluginKind::Freestanding), plain),
                (Some(PluginKind::Freestanding), bulk),
                (Some(libc), libc.flags(opt_level)),
            ]
        }
        (None, Some(kind)) => vec![(Some(kind), kind.flags(opt_level))],
        (None, None) => unreachable!("a plugin without a comment has a kind"),
    };
    let mut first_failure = None;
    let mut success = None;
    for (kind, flags) in attempts {
        compile.flags = flags.into_iter().chain(extra.iter().cloned()).collect();
        let built = compile.run().and_then(|bytes| {
            crate::check_imports(&bytes, &allowed_imports)?;
            Ok(bytes)
        });
        match built {
            Ok(bytes) => {
                success = Some((kind, bytes));
                break;
            }
            Err(error) => {
                first_failure.get_or_insert(error);
            }
        }
    }
    let Some((kind, bytes)) = success else {
        return Err(first_failure.expect("at least one attempt ran"));
    };
    let report = ModuleReport::from_bytes(&bytes)
        .map_err(|error| anyhow::anyhow!("the built module does not parse: {error}"))?;
    let violations = wasmplug_inspect::check(&report, &Policy::default());
    let output = if wasmplug_inspect::is_acceptable(&violations) {
        output
    } else {
        let stem = output.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        output.with_file_name(format!("{stem}.rejected.wasm"))
    };
    std::fs::rename(&staged, &output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Built {
        output,
        kind,
        command: compile.display(),
        bytes,
        report,
        violations,
    })
}

struct Compile<'a> {
    compiler: &'a Path,
    base: &'a [String],
    flags: Vec<String>,
    include: &'a Path,
    sources: &'a [PathBuf],
    /// Whether the C++ driver runs: then C sources are marked `-x c`.
    cpp: bool,
    output: &'a Path,
}

impl Compile<'_> {
    fn arguments(&self) -> Vec<String> {
        let mut arguments: Vec<String> = self.base.to_vec();
        arguments.extend(self.flags.iter().cloned());
        arguments.push(format!("-I{}", self.include.display()));
        for source in self.sources {
            let c_in_cpp = self.cpp && !is_cpp(source);
            if c_in_cpp {
                arguments.extend(["-x".to_owned(), "c".to_owned()]);
            }
            arguments.push(source.display().to_string());
            if c_in_cpp {
                arguments.extend(["-x".to_owned(), "none".to_owned()]);
            }
        }
        arguments
    }

    fn run(&self) -> anyhow::Result<Vec<u8>> {
        let sh = Shell::new()?;
        let (compiler, arguments, output) = (self.compiler, self.arguments(), self.output);
        let compiled = cmd!(sh, "{compiler} {arguments...} -o {output}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("cannot run {}", compiler.display()))?;
        if !compiled.status.success() {
            return Err(CompileFailed {
                compiler: compiler.display().to_string(),
                command: self.display(),
                diagnostics: String::from_utf8_lossy(&compiled.stderr).trim_end().to_owned(),
            }
            .into());
        }
        let warnings = String::from_utf8_lossy(&compiled.stderr);
        if !warnings.trim().is_empty() {
            eprintln!("{}", warnings.trim_end());
        }
        std::fs::read(output).context("cannot read the built module")
    }

    fn display(&self) -> String {
        let mut words = vec![self.compiler.display().to_string()];
        words.extend(self.arguments());
        words.push("-o".into());
        words.push(
            self.output
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        words.join(" ")
    }
}

fn extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|extension| extension.to_str())
}

fn is_cpp(path: &Path) -> bool {
    matches!(extension(path), Some("cpp" | "cc" | "cxx"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(files: &[(&str, &str)]) -> PluginKind {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
            .collect();
        PluginKind::detect(&sources)
    }

    #[test]
    fn the_kind_follows_the_includes_and_the_language() {
        let seed = "extern \"C\" int process(int x) { return (x * 2) + 1; }\n";
        assert_eq!(kind(&[("plugin.cpp", seed)]), PluginKind::Freestanding);
        assert_eq!(
            kind(&[("hello.c", "#include \"wasmplug.h\"\nint x;\n")]),
            PluginKind::Freestanding
        );
        assert_eq!(kind(&[("hello.c", "#include <stdio.h>\n")]), PluginKind::Libc);
        assert_eq!(kind(&[("hello.c", "  #  include <string.h>\n")]), PluginKind::Libc);
        assert_eq!(kind(&[("hello.cpp", "#include <string>\n")]), PluginKind::Libcxx);
        assert_eq!(
            kind(&[("a.c", "#include <stdio.h>\n"), ("b.cpp", "int y;\n")]),
            PluginKind::Libcxx
        );
        assert_eq!(
            PluginKind::Freestanding.flags(3),
            ["-nostdlib", "-Wl,--no-entry", "-O3"]
        );
        assert!(PluginKind::Libcxx.flags(2).contains(&"-mexec-model=reactor".to_owned()));
    }
}
