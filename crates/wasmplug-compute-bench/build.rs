//! Compiles the compute plugins' C/C++ sources natively (clang -O3 when
//! available, else the system compiler) so the `compute` bench can compare
//! each plugin with the same code running outside WebAssembly. Only for
//! the bench: other builds of this crate skip it.

fn main() {
    // Only the bench links this code, and benches build with the release
    // profile: a test or check build (the dev profile) skips the compile.
    println!("cargo:rerun-if-env-changed=PROFILE");
    println!("cargo::rustc-check-cfg=cfg(native_baselines)");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cpp-plugins");
    for source in ["fib.c", "sha256.c", "sort.cpp"] {
        println!("cargo:rerun-if-changed={}", plugins.join(source).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        plugins.join("include/wasmplug.h").display()
    );
    let clang = |name: &str| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
            .then(|| name.to_owned())
    };
    let mut c = cc::Build::new();
    c.opt_level(3).include(plugins.join("include")).warnings(false);
    if let Some(compiler) = clang("clang-19").or_else(|| clang("clang")) {
        c.compiler(compiler);
    }
    c.file(plugins.join("fib.c"))
        .file(plugins.join("sha256.c"))
        .compile("native_compute_c");
    let mut cpp = cc::Build::new();
    cpp.cpp(true)
        .opt_level(3)
        .include(plugins.join("include"))
        .warnings(false);
    if let Some(compiler) = clang("clang++-19").or_else(|| clang("clang++")) {
        cpp.compiler(compiler);
    }
    cpp.file(plugins.join("sort.cpp")).compile("native_compute_cpp");
    println!("cargo:rustc-cfg=native_baselines");
}
