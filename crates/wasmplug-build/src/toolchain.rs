//! Finding the wasm32 toolchain: a clang and clang++ that target wasm32
//! with the WASI sysroot and libc++, a `wasm-ld` they can reach, and
//! (when asked for) `wasm-objdump`. Missing pieces are installed with
//! apt-get only when the caller allows it ([`Install::WhenPossible`]), this
//! is a Debian machine, we are root, and `WASMPLUG_NO_INSTALL` is not `1`.
//!
//! The compilers come from the `cc` crate first, so `CC`/`CXX` and their
//! target-specific forms (`CXX_wasm32_wasip1`, `CXX_wasm32-wasip1`,
//! `TARGET_CXX`) are honoured; then `clang-19`/`clang++-19`, then
//! `clang`/`clang++`. Every candidate must compile and link a tiny probe
//! before it is used.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

/// The clang target every plugin is built for. Debian's wasi-libc and
/// libc++ live under `wasm32-wasi`; clang 19 does not find them for
/// `wasm32-wasip1`.
pub const CLANG_TARGET: &str = "wasm32-wasi";

/// The one command that installs everything the plugins need on Debian.
pub const INSTALL_COMMAND: &str = "apt-get update && apt-get install -y clang-19 lld-19 wasi-libc \
     libc++-19-dev-wasm32 libc++abi-19-dev-wasm32 libclang-rt-19-dev-wasm32 wabt";

/// Packages in [`INSTALL_COMMAND`].
const PACKAGES: &[&str] = &[
    "clang-19",
    "lld-19",
    "wasi-libc",
    "libc++-19-dev-wasm32",
    "libc++abi-19-dev-wasm32",
    "libclang-rt-19-dev-wasm32",
    "wabt",
];

/// The Rust name of the target, as the `cc` crate knows it.
const CC_TARGET: &str = "wasm32-wasip1";

/// Where Debian's lld-19 puts the linker when `wasm-ld` is not on `PATH`.
const WASM_LD_CANDIDATES: &[&str] = &["wasm-ld", "wasm-ld-19", "/usr/lib/llvm-19/bin/wasm-ld"];

const C_PROBE: &str = "int probe(int x) { return x + 1; }\n";

// <new> and operator new are the cheapest way to prove libc++'s headers,
// libc++abi and wasi-libc's malloc are all there (<vector> takes 5x longer).
const CPP_PROBE: &str = "#include <new>\n\
    extern \"C\" __attribute__((export_name(\"probe\"))) int probe(int n) {\n\
        int *p = new int(n);\n\
        int r = *p;\n\
        delete p;\n\
        return r;\n\
    }\n";

/// A working wasm32 toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// Compiles `.c` plugins.
    pub c_compiler: PathBuf,
    /// Compiles `.cpp` plugins.
    pub cpp_compiler: PathBuf,
    /// Flags every compile gets: the target, and `-fuse-ld=` or `--sysroot=`
    /// when the defaults do not work.
    pub base_flags: Vec<String>,
    /// `wasm-objdump` from wabt, if it is installed (only the repository's
    /// own tests compare against it).
    pub wasm_objdump: Option<PathBuf>,
    /// Compiler paths and `--version` outputs; part of every build stamp, so
    /// a compiler upgrade rebuilds the plugins.
    pub fingerprint: String,
}

impl Toolchain {
    /// The compiler for a source file: C++ for `.cpp`, `.cc` and `.cxx`.
    pub fn compiler_for(&self, source: &Path) -> &Path {
        match source.extension().and_then(|extension| extension.to_str()) {
            Some("cpp" | "cc" | "cxx") => &self.cpp_compiler,
            _ => &self.c_compiler,
        }
    }
}

/// Whether a missing toolchain may be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Never: the error names the command that installs it.
    Never,
    /// With apt-get, when this is Debian, we are root, and
    /// `WASMPLUG_NO_INSTALL` is not `1`.
    WhenPossible,
}

/// Finds a working toolchain (with `wasm-objdump` too, when `objdump`),
/// installing it first if it is missing and `install` allows it. The result
/// is cached for the rest of the process.
pub fn ensure_toolchain(install: Install, objdump: bool) -> anyhow::Result<Toolchain> {
    static FOUND: Mutex<Option<Toolchain>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(toolchain) = found
        .as_ref()
        .filter(|toolchain| !objdump || toolchain.wasm_objdump.is_some())
    {
        return Ok(toolchain.clone());
    }
    let sh = Shell::new()?;
    let toolchain = match find_toolchain(&sh, objdump) {
        Ok(toolchain) => toolchain,
        Err(error) => {
            if install == Install::Never {
                bail!(
                    "{error:#}\n\nthe wasm32 C/C++ toolchain is missing or broken; install it (as root, on Debian) \
                     with:\n    {INSTALL_COMMAND}"
                );
            }
            if env::var_os("WASMPLUG_NO_INSTALL").is_some_and(|value| value == "1") {
                bail!(
                    "{error:#}\n\nthe wasm32 C/C++ toolchain is missing or broken and \
                     WASMPLUG_NO_INSTALL=1 forbids installing it; install it with:\n    \
                     {INSTALL_COMMAND}"
                );
            }
            if !can_install(&sh) {
                bail!(
                    "{error:#}\n\nthe wasm32 C/C++ toolchain is missing or broken; \
                     install it (as root, on Debian) with:\n    {INSTALL_COMMAND}"
                );
            }
            eprintln!("wasmplug-build: {error:#}");
            install_packages(&sh)
                .with_context(|| format!("cannot install the wasm32 toolchain; run by hand:\n    {INSTALL_COMMAND}"))?;
            find_toolchain(&sh, objdump).with_context(|| {
                format!(
                    "the wasm32 toolchain still does not work after installing it with:\n    \
                     {INSTALL_COMMAND}"
                )
            })?
        }
    };
    *found = Some(toolchain.clone());
    Ok(toolchain)
}

fn find_toolchain(sh: &Shell, objdump: bool) -> anyhow::Result<Toolchain> {
    let c_compiler = pick_compiler(sh, Language::C)?;
    let cpp_compiler = pick_compiler(sh, Language::Cpp)?;
    let wasm_objdump = find_program("wasm-objdump");
    if objdump && wasm_objdump.is_none() {
        bail!("wasm-objdump (from wabt) not found");
    }

    let mut base_flags = vec![format!("--target={CLANG_TARGET}")];
    if let Some(sysroot) = env::var_os("WASI_SYSROOT") {
        base_flags.push(format!("--sysroot={}", Path::new(&sysroot).display()));
    }
    let probe_dir = tempfile::tempdir().context("cannot create a directory for the probe")?;
    if let Err(first_error) = probe(sh, &c_compiler, &base_flags, Language::C, probe_dir.path()) {
        // clang looks for `wasm-ld` beside itself and on PATH; Debian names
        // it `wasm-ld-19`, so point clang at it explicitly.
        let linker = WASM_LD_CANDIDATES.iter().filter_map(find_program).find(|linker| {
            let mut flags = base_flags.clone();
            flags.push(format!("-fuse-ld={}", linker.display()));
            probe(sh, &c_compiler, &flags, Language::C, probe_dir.path()).is_ok()
        });
        let Some(linker) = linker else {
            return Err(first_error.context("no wasm-ld that works was found"));
        };
        base_flags.push(format!("-fuse-ld={}", linker.display()));
    }
    probe(sh, &cpp_compiler, &base_flags, Language::Cpp, probe_dir.path())
        .context("C++ with libc++ does not build for wasm32")?;

    let mut fingerprint = String::new();
    for compiler in [&c_compiler, &cpp_compiler] {
        let version = cmd!(sh, "{compiler} --version").quiet().read()?;
        writeln!(fingerprint, "{}\n{version}", compiler.display())?;
    }
    writeln!(fingerprint, "{}", base_flags.join(" "))?;

    Ok(Toolchain {
        c_compiler,
        cpp_compiler,
        base_flags,
        wasm_objdump,
        fingerprint,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    C,
    Cpp,
}

/// The first candidate compiler that exists and knows the wasm32 target.
fn pick_compiler(sh: &Shell, language: Language) -> anyhow::Result<PathBuf> {
    let fallbacks: &[&str] = match language {
        Language::C => &["clang-19", "clang"],
        Language::Cpp => &["clang++-19", "clang++"],
    };
    let from_cc = compiler_from_cc(language);
    let mut candidates: Vec<PathBuf> = from_cc.iter().cloned().collect();
    for fallback in fallbacks.iter().map(PathBuf::from) {
        if !candidates.contains(&fallback) {
            candidates.push(fallback);
        }
    }
    let mut rejected = Vec::new();
    for candidate in candidates {
        let Some(path) = find_program(&candidate) else {
            rejected.push(format!("{}: not found", candidate.display()));
            continue;
        };
        let targets = cmd!(sh, "{path} -print-targets").quiet().ignore_stderr().read();
        if targets.is_ok_and(|targets| targets.lines().any(|line| line.trim().starts_with("wasm32"))) {
            // `cc` answers plain `clang`/`clang++` unless CC or CXX say
            // otherwise; only a compiler someone chose is worth a warning.
            let chosen = from_cc.as_ref().filter(|cc| find_program(cc).is_some());
            if chosen.is_some_and(|chosen| *chosen != candidate) {
                eprintln!(
                    "wasmplug-build: warning: using {} instead ({})",
                    path.display(),
                    rejected.join("; ")
                );
            }
            return Ok(path);
        }
        rejected.push(format!("{}: cannot target wasm32", path.display()));
    }
    let kind = match language {
        Language::C => "C compiler (clang)",
        Language::Cpp => "C++ compiler (clang++)",
    };
    bail!("no {kind} for wasm32 found: {}", rejected.join("; "))
}

/// What the `cc` crate would use for `wasm32-wasip1`, which honours `CC`,
/// `CXX` and their target-specific forms. This is not a build script, so
/// everything cargo would set in the environment is passed explicitly.
fn compiler_from_cc(language: Language) -> Option<PathBuf> {
    let mut build = cc::Build::new();
    build
        .cpp(language == Language::Cpp)
        .target(CC_TARGET)
        .host(env!("WASMPLUG_BUILD_HOST_TRIPLE"))
        .opt_level(2)
        .debug(false)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .warnings(false);
    build.try_get_compiler().ok().map(|tool| tool.path().to_path_buf())
}

/// Compiles and links a tiny plugin, so a missing sysroot, libc++ or linker
/// shows up here with clang's own message instead of halfway through a build.
fn probe(sh: &Shell, compiler: &Path, base_flags: &[String], language: Language, dir: &Path) -> anyhow::Result<()> {
    let (source_name, source, flags): (&str, &str, &[&str]) = match language {
        Language::C => (
            "probe.c",
            C_PROBE,
            &["-nostdlib", "-Wl,--no-entry", "-Wl,--export=probe", "-O2"],
        ),
        Language::Cpp => ("probe.cpp", CPP_PROBE, &["-mexec-model=reactor", "-fno-exceptions"]),
    };
    let source_path = dir.join(source_name);
    fs::write(&source_path, source).context("cannot write the probe source")?;
    let output_path = dir.join("probe.wasm");
    let output = cmd!(
        sh,
        "{compiler} {base_flags...} {flags...} {source_path} -o {output_path}"
    )
    .quiet()
    .ignore_status()
    .output()?;
    if !output.status.success() {
        bail!(
            "{} cannot build a wasm32 {source_name}:\n{}",
            compiler.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}

fn can_install(sh: &Shell) -> bool {
    Path::new("/usr/bin/apt-get").exists() && cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid.trim() == "0")
}

/// Whether this machine lets us install Debian packages (apt-get, root).
pub fn can_install_packages() -> bool {
    Shell::new().is_ok_and(|sh| can_install(&sh))
}

fn install_packages(sh: &Shell) -> anyhow::Result<()> {
    eprintln!("wasmplug-build: installing the wasm32 toolchain: {INSTALL_COMMAND}");
    apt_install_with(sh, PACKAGES)
}

/// `apt-get update`, then `apt-get install -y <packages>`.
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    apt_install_with(&Shell::new()?, packages)
}

fn apt_install_with(sh: &Shell, packages: &[&str]) -> anyhow::Result<()> {
    // Two test processes may get here at once; wait for the other's dpkg
    // lock rather than failing.
    let lock_timeout = "DPkg::Lock::Timeout=600";
    cmd!(sh, "apt-get -o {lock_timeout} update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("apt-get update failed")?;
    cmd!(sh, "apt-get -o {lock_timeout} install -y {packages...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("apt-get install failed")?;
    Ok(())
}

/// `program` itself if it is a path to a file, else the first match on
/// `PATH`.
pub fn find_program(program: impl AsRef<Path>) -> Option<PathBuf> {
    let program = program.as_ref();
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
