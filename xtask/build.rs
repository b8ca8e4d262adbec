//! Records the host triple for `cc`, which reads `HOST` only inside build
//! scripts; xtask runs outside one and passes it explicitly.

fn main() {
    let host = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=XTASK_HOST_TRIPLE={host}");
    println!("cargo:rerun-if-changed=build.rs");
}
