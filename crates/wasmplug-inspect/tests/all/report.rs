//! The report over every hand-written module: text and JSON snapshots, and
//! a few facts checked directly.

use wasmplug_inspect::{ExternKind, ModuleReport, ValType, LARGEST_FUNCTIONS};

use crate::modules::{all_modules, wat_module, WAT_MODULES};

/// Reads `name` and snapshots both renderings.
fn check(name: &str) -> ModuleReport {
    let report = ModuleReport::from_bytes(&wat_module(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    insta::assert_snapshot!(format!("{name}.text"), report.render_text());
    insta::assert_snapshot!(format!("{name}.json"), report.render_json());
    report
}

#[test]
fn every_generated_module_has_text_and_json_snapshots() {
    for (name, _) in WAT_MODULES {
        check(name);
    }
}

#[test]
fn rendering_is_deterministic() {
    for (name, bytes) in all_modules() {
        let first = ModuleReport::from_bytes(&bytes).unwrap();
        let second = ModuleReport::from_bytes(&bytes).unwrap();
        assert_eq!(first.render_text(), second.render_text(), "{name}");
        assert_eq!(first.render_json(), second.render_json(), "{name}");
    }
}

#[test]
fn json_round_trips() {
    for (name, _) in WAT_MODULES {
        let report = ModuleReport::from_bytes(&wat_module(name)).unwrap();
        let back: ModuleReport = serde_json::from_str(&report.render_json()).unwrap();
        assert_eq!(back, report, "{name}");
    }
}

#[test]
fn imports_of_every_kind_carry_their_details() {
    let report = check("imports_every_kind");
    let kinds: Vec<ExternKind> = report.imports.iter().map(|import| import.kind).collect();
    assert_eq!(
        kinds,
        [
            ExternKind::Func,
            ExternKind::Func,
            ExternKind::Table,
            ExternKind::Table,
            ExternKind::Memory,
            ExternKind::Memory,
            ExternKind::Global,
            ExternKind::Global,
            ExternKind::Tag,
        ]
    );
    assert_eq!(
        report.imports[0].signature.as_ref().unwrap().to_string(),
        "(i32, i64) -> f64"
    );
    assert!(report.memories[1].shared && report.memories[1].imported);
    assert_eq!(report.tables[1].element_type, ValType::ExternRef);
    assert!(report.globals[0].mutable && !report.globals[1].mutable);
}

#[test]
fn memories_know_their_limits_and_exports() {
    let report = check("multi_memory");
    let summary: Vec<_> = report
        .memories
        .iter()
        .map(|memory| {
            (
                memory.initial_pages,
                memory.maximum_pages,
                memory.shared,
                memory.memory64,
                memory.export_names.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, None, false, false, vec!["memory".to_owned()]),
            (2, Some(3), false, false, vec![]),
            (1, Some(8), true, false, vec!["shared".to_owned()]),
            (1, Some(100000), false, true, vec!["wide".to_owned()]),
        ]
    );
}

#[test]
fn the_code_summary_lists_the_largest_bodies_first() {
    let report = check("code_sizes");
    assert_eq!(report.code.function_count, 13);
    assert_eq!(report.code.largest.len(), LARGEST_FUNCTIONS);
    let sizes: Vec<u64> = report.code.largest.iter().map(|f| f.size_bytes).collect();
    assert!(sizes.windows(2).all(|pair| pair[0] >= pair[1]), "{sizes:?}");
    let total: u64 = report.functions.iter().filter_map(|f| f.size_bytes).sum();
    assert_eq!(report.code.total_size_bytes, total);
}

#[test]
fn producers_and_target_features_are_decoded() {
    let report = check("custom_sections");
    let producers = report.producers.as_ref().unwrap();
    assert_eq!(producers.language.len(), 2);
    assert_eq!(producers.processed_by[0].name, "clang");
    assert_eq!(producers.sdk[0].version, "25.0");
    let features: Vec<String> = report
        .target_features
        .iter()
        .map(|feature| format!("{}{}", feature.prefix, feature.name))
        .collect();
    assert_eq!(features, ["+bulk-memory", "-simd128", "=sign-ext"]);
    let names: Vec<&str> = report.custom_sections.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.starts_with(&["first", "producers", "target_features", "empty"]),
        "{names:?}"
    );
}

#[test]
fn names_come_from_the_name_section() {
    let report = check("names");
    assert_eq!(report.module_name.as_deref(), Some("named_module"));
    assert_eq!(report.function_name(0), Some("host_log"));
    assert_eq!(report.function_name(1), Some("helper"));
    assert_eq!(report.start_function, None);
    let report = check("start_function");
    assert!(report.has_start_function);
    assert_eq!(report.start_function, Some(0));
}
