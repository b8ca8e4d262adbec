//! Valid modules from wasm-smith, with a configuration the fuzzer also
//! chooses, into the inspector: a valid module must be read, rendered and
//! checked without a panic; walrus may refuse a proposal it does not know,
//! but only with an `Unsupported` error.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasmplug_inspect::{check, InspectError, ModuleReport, Policy};

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(config) = wasm_smith::Config::arbitrary(&mut input) else {
        return;
    };
    let Ok(module) = wasm_smith::Module::new(config, &mut input) else {
        return;
    };
    let bytes = module.to_bytes();
    match ModuleReport::from_bytes(&bytes) {
        Ok(report) => {
            let _ = report.render_text();
            let _ = report.render_json();
            let _ = check(&report, &Policy::default());
        }
        Err(InspectError::Unsupported { .. }) => {}
        Err(error) => panic!("a valid wasm-smith module was refused: {error}"),
    }
});
