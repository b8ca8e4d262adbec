//! Arbitrary bytes into the inspector: reading, both renderings and the
//! contract check must never panic, and a failure must be one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmplug_inspect::{check, is_acceptable, ModuleReport, Policy};

fuzz_target!(|bytes: &[u8]| {
    match ModuleReport::from_bytes(bytes) {
        Ok(report) => {
            let _ = report.render_text();
            let _ = report.render_json();
            let _ = is_acceptable(&check(&report, &Policy::default()));
        }
        Err(error) => assert!(!error.to_string().contains('\n'), "{error}"),
    }
});
