//! No input makes the inspector panic: arbitrary bytes, bytes that start
//! like a module, and valid modules from wasm-smith with random
//! configurations all go through `from_bytes`, both renderings and `check`.
//!
//! The case count comes from `WASMPLUG_PROPTEST_CASES` (default 2000, so
//! `cargo test` stays quick); CI can ask for a bigger bounded run.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use wasmplug_inspect::{check, is_acceptable, InspectError, ModuleReport, Policy};

fn cases() -> u32 {
    std::env::var("WASMPLUG_PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Failures are reported with their minimal input; no files written
        // into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Everything a caller may do with bytes; none of it may panic.
fn exercise(bytes: &[u8]) {
    match ModuleReport::from_bytes(bytes) {
        Ok(report) => {
            let text = report.render_text();
            assert!(text.starts_with("Size: ") || text.starts_with("Module: "));
            let json = report.render_json();
            assert!(json.starts_with('{'));
            let strict = Policy {
                required_exports: vec!["process:(i32)->i32".parse().unwrap()],
                allow_wasi: false,
                max_memory_pages: 1,
                max_module_bytes: 16,
            };
            for policy in [Policy::default(), strict] {
                let violations = check(&report, &policy);
                let _ = is_acceptable(&violations);
            }
        }
        Err(error) => {
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }
}

/// A wasm-smith module: a random configuration, then a module for it.
fn smith(seed: &[u8]) -> Option<Vec<u8>> {
    let mut input = Unstructured::new(seed);
    let config = wasm_smith::Config::arbitrary(&mut input).ok()?;
    let module = wasm_smith::Module::new(config, &mut input).ok()?;
    Some(module.to_bytes())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn bytes_after_a_module_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.extend(tail);
        exercise(&bytes);
    }

    #[test]
    fn wasm_smith_modules_never_panic(seed in proptest::collection::vec(any::<u8>(), 16..2048)) {
        if let Some(bytes) = smith(&seed) {
            // A valid module is read; walrus may only refuse, cleanly, a
            // proposal it does not support.
            match ModuleReport::from_bytes(&bytes) {
                Ok(_) | Err(InspectError::Unsupported { .. }) => {}
                Err(error) => prop_assert!(false, "a valid module was refused: {}", error),
            }
            exercise(&bytes);
            // A cut-short valid module must fail cleanly too.
            exercise(&bytes[..bytes.len() / 2]);
        }
    }
}
