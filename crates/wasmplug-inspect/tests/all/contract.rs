//! The plugin contract: one snapshot per violation code, the default policy,
//! and `RequiredExport` parsing.

use wasmplug_inspect::{
    check as check_contract, is_acceptable, ModuleReport, Policy, RequiredExport, Severity, Violation, ViolationCode,
};

use crate::modules::wat_module;

/// Checks the generated module `name` against `policy`, snapshots the
/// violations as JSON, and returns them.
fn check(snapshot: &str, name: &str, policy: &Policy) -> Vec<Violation> {
    let report = ModuleReport::from_bytes(&wat_module(name)).unwrap();
    let violations = check_contract(&report, policy);
    insta::assert_json_snapshot!(format!("contract_{snapshot}"), violations);
    violations
}

fn codes(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|violation| violation.code.as_str()).collect()
}

fn requiring(exports: &[&str]) -> Policy {
    Policy {
        required_exports: exports.iter().map(|text| text.parse().unwrap()).collect(),
        ..Policy::default()
    }
}

#[test]
fn a_good_plugin_passes() {
    let violations = check(
        "passes",
        "plugin",
        &requiring(&["process:(i32)->i32", "invoke:()->i32"]),
    );
    assert!(violations.is_empty(), "{violations:?}");
    assert!(is_acceptable(&violations));
}

#[test]
fn command_module() {
    let violations = check("command_module", "command", &Policy::default());
    assert_eq!(codes(&violations), ["command-module"]);
    assert!(!is_acceptable(&violations));
}

#[test]
fn start_function() {
    let violations = check("start_function", "start_function", &Policy::default());
    assert_eq!(codes(&violations), ["start-function"]);
}

#[test]
fn missing_export_and_export_signature() {
    let policy = requiring(&[
        "process:(i32)->i32",
        "run:()->nil",
        "invoke:(i32)->i32",
        "memory:()->nil",
    ]);
    let violations = check("missing_export_and_export_signature", "plugin", &policy);
    assert_eq!(
        codes(&violations),
        ["missing-export", "export-signature", "export-signature"]
    );
}

#[test]
fn forbidden_import() {
    let violations = check("forbidden_import", "imports_every_kind", &Policy::default());
    assert!(
        codes(&violations).iter().all(|code| *code == "forbidden-import"),
        "{violations:?}"
    );
    assert_eq!(violations.len(), 9);
}

#[test]
fn wasi_is_forbidden_when_not_allowed() {
    let policy = Policy {
        allow_wasi: false,
        ..Policy::default()
    };
    let violations = check("wasi_not_allowed", "wasi_reactor", &policy);
    assert_eq!(codes(&violations), ["forbidden-import"; 4]);
    assert!(check_contract(
        &ModuleReport::from_bytes(&wat_module("wasi_reactor")).unwrap(),
        &Policy::default()
    )
    .is_empty());
}

#[test]
fn host_and_wasi_imports_are_checked_by_name_and_signature() {
    let violations = check("bad_host_imports", "bad_host_imports", &Policy::default());
    assert_eq!(
        codes(&violations),
        [
            "host-import-signature",
            "unknown-host-import",
            "forbidden-import",
            "wasi-import-signature",
            "unknown-wasi-import",
            "missing-memory",
            "memory-no-maximum",
        ]
    );
}

#[test]
fn memory_limits() {
    let policy = Policy {
        max_memory_pages: 1024,
        ..Policy::default()
    };
    let violations = check("memory_limits", "memory_limits", &policy);
    assert_eq!(codes(&violations), ["memory-max-exceeded", "memory-no-maximum"]);
    assert_eq!(violations[1].severity, Severity::Warning);
    assert!(!is_acceptable(&violations));
    assert!(is_acceptable(&violations[1..]), "a warning alone is acceptable");
}

#[test]
fn module_too_large() {
    let policy = Policy {
        max_module_bytes: 8,
        ..Policy::default()
    };
    let violations = check("module_too_large", "exports_every_kind", &policy);
    assert_eq!(codes(&violations), ["memory-no-maximum", "module-too-large"]);
}

#[test]
fn every_code_has_a_snapshot_above() {
    let covered = [
        "command-module",
        "start-function",
        "missing-export",
        "export-signature",
        "forbidden-import",
        "unknown-host-import",
        "host-import-signature",
        "unknown-wasi-import",
        "wasi-import-signature",
        "missing-memory",
        "memory-max-exceeded",
        "memory-no-maximum",
        "module-too-large",
    ];
    let all: Vec<&str> = ViolationCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(all, covered);
}

#[test]
fn the_default_policy() {
    let policy = Policy::default();
    assert!(policy.allow_wasi);
    assert!(policy.required_exports.is_empty());
    assert_eq!(policy.max_memory_pages, 65536);
    assert_eq!(policy.max_module_bytes, 64 << 20);
}

#[test]
fn required_exports_parse_and_print() {
    let required: RequiredExport = "process:(i32)->i32".parse().unwrap();
    assert_eq!(required.name, "process");
    assert_eq!(required.to_string(), "process:(i32) -> i32");
    assert_eq!(required.to_string().parse::<RequiredExport>().unwrap(), required);
    for bad in ["process", ":(i32)->i32", "process:(i32)", "process:(i33)->i32"] {
        assert!(bad.parse::<RequiredExport>().is_err(), "{bad}");
    }
}

#[test]
fn violations_render_as_one_line() {
    let report = ModuleReport::from_bytes(&wat_module("command")).unwrap();
    let violation = &check_contract(&report, &Policy::default())[0];
    assert!(violation.to_string().starts_with("error[command-module]: "));
    assert_eq!(violation.code, "command-module");
}
