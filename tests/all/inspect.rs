//! The inspector over every example plugin: a text snapshot each, and the
//! export list agreeing with `wasm-objdump -x`.

use std::process::Command;

use wasmplug_inspect::ModuleReport;
use wasmplug_tests::{plugin_bytes, plugin_names, plugin_path};

#[test]
fn every_plugin_has_an_inspection_snapshot() {
    for name in plugin_names() {
        let report = ModuleReport::from_bytes(&plugin_bytes(&name)).unwrap();
        insta::assert_snapshot!(format!("inspect_{name}"), report.render_text());
    }
}

#[test]
fn the_seed_plugin_exports_process_and_memory() {
    let report = ModuleReport::from_bytes(&plugin_bytes("process")).unwrap();
    let exports: Vec<String> = report
        .exports
        .iter()
        .map(|export| match &export.signature {
            Some(signature) => format!("{} {} {signature}", export.kind.as_str(), export.name),
            None => format!("{} {}", export.kind.as_str(), export.name),
        })
        .collect();
    assert_eq!(exports, ["memory memory", "func process (i32) -> i32"]);
}

/// `wasm-objdump -x` lines like ` - func[3] <name> -> "process"` give the
/// export's kind and name; both tools must list the same ones in order.
#[test]
fn exports_agree_with_wasm_objdump() {
    for name in plugin_names() {
        let path = plugin_path(&name);
        let output = Command::new("wasm-objdump")
            .arg("-x")
            .arg(&path)
            .output()
            .expect("wasm-objdump runs (cargo xtask build-plugins installs wabt)");
        assert!(output.status.success(), "wasm-objdump failed on {name}");
        let text = String::from_utf8_lossy(&output.stdout);
        let objdump: Vec<(String, String)> = text
            .lines()
            .skip_while(|line| !line.starts_with("Export["))
            .skip(1)
            .take_while(|line| line.starts_with(" - "))
            .map(|line| {
                let kind = line[3..].split('[').next().unwrap().to_owned();
                let exported = line.rsplit("-> \"").next().unwrap().trim_end_matches('"').to_owned();
                (kind, exported)
            })
            .collect();
        let report = ModuleReport::from_bytes(&plugin_bytes(&name)).unwrap();
        let ours: Vec<(String, String)> = report
            .exports
            .iter()
            .map(|export| (export.kind.as_str().to_owned(), export.name.clone()))
            .collect();
        assert_eq!(ours, objdump, "exports of {name} differ from wasm-objdump");
        assert!(!ours.is_empty(), "{name} exports nothing");
    }
}
