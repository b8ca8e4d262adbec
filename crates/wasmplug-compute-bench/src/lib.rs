//! A home for the `compute` bench (`benches/compute.rs`) and the build
//! script that compiles its native baselines (linked through this crate),
//! so that no other build compiles them.
