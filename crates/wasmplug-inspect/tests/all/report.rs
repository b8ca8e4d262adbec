//! The report over every hand-written module: text and JSON snapshots, and
//! a few facts checked directly.

use wasmplug_inspect::{ExternKind, ModuleReport, StateWriter, ValType, LARGEST_FUNCTIONS};

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

#[test]
fn a_module_is_stateless_only_when_no_call_can_write_anything() {
    let module = |body: &str| {
        let text = format!(
            r#"(module
                 (memory 1 1) (data "x")
                 (global $g (mut i32) (i32.const 0))
                 (table 1 funcref) (elem declare func $f)
                 (func $f (export "f") (param i32) (result i32) {body}))"#
        );
        ModuleReport::from_bytes(&wat::parse_str(text).unwrap()).unwrap()
    };
    let reads_only = module(
        "local.get 0 i32.load global.get $g i32.add memory.size i32.add \
         i32.const 0 table.get 0 ref.is_null i32.add table.size 0 i32.add \
         i32.const 0 v128.load i32x4.extract_lane 0 i32.add",
    );
    assert!(reads_only.is_stateless(), "{:?}", reads_only.state_writer);
    assert!(reads_only
        .render_text()
        .contains("stateless: no call can change an instance"));

    for (body, instruction) in [
        ("local.get 0 local.get 0 i32.store local.get 0", "a memory store"),
        ("local.get 0 global.set $g local.get 0", "global.set"),
        ("local.get 0 memory.grow", "memory.grow"),
        (
            "i32.const 0 local.get 0 i32.const 1 memory.fill local.get 0",
            "memory.fill",
        ),
        (
            "i32.const 0 i32.const 0 i32.const 1 memory.init 0 local.get 0",
            "memory.init",
        ),
        ("data.drop 0 local.get 0", "data.drop"),
        ("i32.const 0 ref.null func table.set 0 local.get 0", "table.set"),
        ("ref.null func i32.const 1 table.grow 0", "table.grow"),
        (
            "local.get 0 v128.const i64x2 0 0 v128.store8_lane 0 0 local.get 0",
            "a v128 lane store",
        ),
        (
            "local.get 0 i32.const 1 i32.atomic.rmw.add",
            "an atomic read-modify-write",
        ),
    ] {
        let report = module(body);
        assert_eq!(
            report.state_writer,
            Some(StateWriter::Instruction {
                function: 0,
                function_name: Some("f".into()),
                instruction: instruction.into(),
            }),
            "{body}"
        );
        assert!(!report.is_stateless());
    }

    let imports = ModuleReport::from_bytes(
        &wat::parse_str(
            r#"(module (import "env" "clock" (func (result i64))) (func (export "f") (result i32) i32.const 1))"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        imports.state_writer,
        Some(StateWriter::Import {
            name: "env.clock".into()
        })
    );
    assert_eq!(imports.state_writer.unwrap().to_string(), "imports env.clock");
}
