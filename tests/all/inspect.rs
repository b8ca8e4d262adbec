//! The inspector over every example plugin: a text snapshot each, and the
//! export list agreeing with `wasm-objdump -x`. The filters that keep
//! snapshots of compiled plugins from pinning one release of clang live
//! here too.

use wasmplug_inspect::ModuleReport;
use wasmplug_tests::{plugin_bytes, plugin_names};

/// What a toolchain update moves in a snapshot of a compiled plugin, as
/// insta filters (regex, replacement), applied in order: the module, code,
/// data and custom section sizes; the ranking of functions by size; the
/// addresses the linker picks for the stack and the data; code offsets in
/// backtraces; the producers' versions; and libc++'s version tag in symbol
/// names. Exports, imports, types, signatures, function names, memory and
/// table limits and the state analysis stay as they are
/// (`the_toolchain_filters_keep_the_facts` checks it).
pub(crate) const TOOLCHAIN_FILTERS: &[(&str, &str)] = &[
    (r"(?m)^Size: \d+ bytes$", "Size: [bytes] bytes"),
    (
        r"(?m)^(Code\[\d+\]: )\d+ bytes of bodies; the largest:\n(?: - func\[\d+\] size=\d+ <.*>\n)*",
        "${1}[bytes] bytes of bodies; the largest: [ranking by size]\n",
    ),
    (r" size=\d+", " size=[size]"),
    (r"(?m)^(Data\[\d+\]: )\d+ bytes$", "${1}[bytes] bytes"),
    (r"(<__stack_pointer> - init i32\.const )\d+", "${1}[address]"),
    (
        r"(?m)^( - segment\[\d+\] active memory=\d+ size=\[size\] - init i32\.const )\d+$",
        "${1}[address]",
    ),
    (r#""module_offset":\d+"#, r#""module_offset":[offset]"#),
    (r"(?m)^( - processed-by: ).*$", "${1}[toolchain]"),
    (r"\[abi:nn\d+\]", "[abi:[libc++ version]]"),
];

/// insta settings with [`TOOLCHAIN_FILTERS`], for every snapshot that shows
/// a compiled plugin's bytes.
pub(crate) fn toolchain_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (regex, replacement) in TOOLCHAIN_FILTERS {
        settings.add_filter(regex, *replacement);
    }
    settings
}

#[test]
fn every_plugin_has_an_inspection_snapshot() {
    let _settings = toolchain_settings().bind_to_scope();
    for name in plugin_names() {
        let report = ModuleReport::from_bytes(&plugin_bytes(&name)).unwrap();
        insta::assert_snapshot!(format!("inspect_{name}"), report.render_text());
    }
}

/// The filters take out what they are for (no size, address or producer's
/// version is left) and nothing else: every line of the type, import,
/// function (but its size), table, memory, global (but its address),
/// export, element and state sections comes through unchanged.
#[test]
fn the_toolchain_filters_keep_the_facts() {
    let filters: Vec<(regex::Regex, &str)> = TOOLCHAIN_FILTERS
        .iter()
        .map(|(regex, replacement)| (regex::Regex::new(regex).unwrap(), *replacement))
        .collect();
    // What a toolchain update moves must be gone once filtered.
    let left_after_filtering: Vec<regex::Regex> = [
        r"(?i)clang",
        r"Size: \d",
        r"size=\d",
        r": \d+ bytes",
        r"<__stack_pointer> - init i32\.const \d",
        r"active memory=\d+ size=\S+ - init i32\.const \d",
        r"abi:nn\d",
    ]
    .iter()
    .map(|regex| regex::Regex::new(regex).unwrap())
    .collect();
    let abi_tag = regex::Regex::new(r"\[abi:nn\d+\]").unwrap();
    let kept = [
        "Module", "Type", "Import", "Function", "Table", "Memory", "Global", "Export", "Elem", "State",
    ];
    for name in plugin_names() {
        let text = ModuleReport::from_bytes(&plugin_bytes(&name)).unwrap().render_text();
        let filtered = filters.iter().fold(text.clone(), |text, (regex, replacement)| {
            regex.replace_all(&text, *replacement).into_owned()
        });
        let filtered_lines: std::collections::HashSet<&str> = filtered.lines().collect();
        let mut section = "";
        let mut checked = 0;
        for line in text.lines() {
            if !line.starts_with(' ') {
                section = line.split(['[', ':']).next().unwrap();
            }
            if !kept.contains(&section) {
                continue;
            }
            // Names keep all but libc++'s version tag.
            let line = abi_tag.replace_all(line, "[abi:[libc++ version]]");
            let expected = match line.rsplit_once(" size=") {
                Some((before, _)) if section == "Function" => format!("{before} size=[size]"),
                _ => match line.rsplit_once("<__stack_pointer> - init i32.const ") {
                    Some((before, _)) => format!("{before}<__stack_pointer> - init i32.const [address]"),
                    None => line.clone().into_owned(),
                },
            };
            assert!(
                filtered_lines.contains(expected.as_str()),
                "{name}: the filters changed `{line}`:\n{filtered}"
            );
            checked += 1;
        }
        assert!(checked >= 8, "{name}: only {checked} lines checked");
        for moved in &left_after_filtering {
            assert!(
                !moved.is_match(&filtered),
                "{name}: `{moved}` still matches after the filters:\n{filtered}"
            );
        }
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
