//! The plugin contract: one snapshot per violation code, the default policy,
//! and `RequiredExport` parsing.

use serde::de::{value::Error as ValueError, IntoDeserializer};
use serde::Deserialize as _;
use wasmplug_inspect::{
    check as check_contract, is_acceptable, ModuleReport, Policy, RequiredExport, Severity, Violation, ViolationCode,
};

use crate::modules::wat_module;

/// One contract snapshot: the generated module checked against a policy.
struct Case {
    /// The snapshot is `contract_<snapshot>`.
    snapshot: &'static str,
    module: &'static str,
    policy: fn() -> Policy,
}

/// Every contract snapshot. The tests below check one each;
/// `every_code_has_a_snapshot` checks what their snapshot files show.
const CASES: &[Case] = &[
    Case {
        snapshot: "passes",
        module: "plugin",
        policy: || requiring(&["process:(i32)->i32", "invoke:()->i32"]),
    },
    Case {
        snapshot: "command_module",
        module: "command",
        policy: Policy::default,
    },
    Case {
        snapshot: "start_function",
        module: "start_function",
        policy: Policy::default,
    },
    Case {
        snapshot: "missing_export_and_export_signature",
        module: "plugin",
        policy: || {
            requiring(&[
                "process:(i32)->i32",
                "run:()->nil",
                "invoke:(i32)->i32",
                "memory:()->nil",
            ])
        },
    },
    Case {
        snapshot: "forbidden_import",
        module: "imports_every_kind",
        policy: Policy::default,
    },
    Case {
        snapshot: "wasi_not_allowed",
        module: "wasi_reactor",
        policy: || Policy {
            allow_wasi: false,
            ..Policy::default()
        },
    },
    Case {
        snapshot: "bad_host_imports",
        module: "bad_host_imports",
        policy: Policy::default,
    },
    Case {
        snapshot: "memory_limits",
        module: "memory_limits",
        policy: || Policy {
            max_memory_pages: 1024,
            ..Policy::default()
        },
    },
    Case {
        snapshot: "module_too_large",
        module: "exports_every_kind",
        policy: || Policy {
            max_module_bytes: 8,
            ..Policy::default()
        },
    },
];

/// Checks the case named `snapshot`, snapshots its violations as JSON, and
/// returns them.
fn check(snapshot: &str) -> Vec<Violation> {
    let case = CASES
        .iter()
        .find(|case| case.snapshot == snapshot)
        .unwrap_or_else(|| panic!("no contract case named {snapshot}"));
    let violations = violations(case);
    insta::assert_json_snapshot!(format!("contract_{snapshot}"), violations);
    violations
}

fn violations(case: &Case) -> Vec<Violation> {
    let report = ModuleReport::from_bytes(&wat_module(case.module)).unwrap();
    check_contract(&report, &(case.policy)())
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
    let violations = check("passes");
    assert!(violations.is_empty(), "{violations:?}");
    assert!(is_acceptable(&violations));
}

#[test]
fn command_module() {
    let violations = check("command_module");
    assert_eq!(codes(&violations), ["command-module"]);
    assert!(!is_acceptable(&violations));
}

#[test]
fn start_function() {
    let violations = check("start_function");
    assert_eq!(codes(&violations), ["start-function"]);
}

#[test]
fn missing_export_and_export_signature() {
    let violations = check("missing_export_and_export_signature");
    assert_eq!(
        codes(&violations),
        ["missing-export", "export-signature", "export-signature"]
    );
}

#[test]
fn forbidden_import() {
    let violations = check("forbidden_import");
    assert!(
        codes(&violations).iter().all(|code| *code == "forbidden-import"),
        "{violations:?}"
    );
    assert_eq!(violations.len(), 9);
}

#[test]
fn wasi_is_forbidden_when_not_allowed() {
    let violations = check("wasi_not_allowed");
    assert_eq!(codes(&violations), ["forbidden-import"; 4]);
    assert!(check_contract(
        &ModuleReport::from_bytes(&wat_module("wasi_reactor")).unwrap(),
        &Policy::default()
    )
    .is_empty());
}

#[test]
fn host_and_wasi_imports_are_checked_by_name_and_signature() {
    let violations = check("bad_host_imports");
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
    let violations = check("memory_limits");
    assert_eq!(codes(&violations), ["memory-max-exceeded", "memory-no-maximum"]);
    assert_eq!(violations[1].severity, Severity::Warning);
    assert!(!is_acceptable(&violations));
    assert!(is_acceptable(&violations[1..]), "a warning alone is acceptable");
}

#[test]
fn module_too_large() {
    let violations = check("module_too_large");
    assert_eq!(codes(&violations), ["memory-no-maximum", "module-too-large"]);
}

/// Every violation code appears in a contract snapshot. The codes come from
/// the enum itself (serde's variant indices, so a new variant is seen
/// without anyone listing it here), and what each snapshot file shows is
/// compared with what its case yields today.
#[test]
fn every_code_has_a_snapshot() {
    let variants: Vec<ViolationCode> = (0_u32..)
        .map_while(|index| {
            let index = <u32 as IntoDeserializer<'_, ValueError>>::into_deserializer(index);
            ViolationCode::deserialize(index).ok()
        })
        .collect();
    let mut all = ViolationCode::ALL.to_vec();
    all.sort();
    assert_eq!(all, variants, "ViolationCode::ALL lists every variant once");

    let snapshots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/snapshots");
    let mut shown = std::collections::BTreeSet::new();
    for case in CASES {
        let path = snapshots.join(format!("all__contract__contract_{}.snap", case.snapshot));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        // An insta file: `---`, a header, `---`, then the snapshot.
        let body = text.splitn(3, "---\n").nth(2).expect("an insta snapshot file");
        let in_file: Vec<Violation> = serde_json::from_str(body).unwrap();
        let today = violations(case);
        assert_eq!(
            codes(&in_file),
            codes(&today),
            "{} shows other codes than its case yields",
            path.display()
        );
        shown.extend(in_file.iter().map(|violation| violation.code));
    }
    let missing: Vec<&str> = variants
        .iter()
        .filter(|code| !shown.contains(code))
        .map(|code| code.as_str())
        .collect();
    assert!(missing.is_empty(), "codes no contract snapshot shows: {missing:?}");
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
    let violation = &violations(&CASES[1])[0];
    assert!(violation.to_string().starts_with("error[command-module]: "));
    assert_eq!(violation.code, "command-module");
}
