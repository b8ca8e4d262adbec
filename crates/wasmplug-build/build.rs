//! Records the host triple for `cc`, which reads `HOST` only inside build
//! scripts; this crate runs outside one and passes it explicitly.

fn main() {
    let host = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=WASMPLUG_BUILD_HOST_TRIPLE={host}");
    println!("cargo:rerun-if-changed=build.rs");
}
