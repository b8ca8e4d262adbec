//! The report agrees with `wasm-objdump -x` (wabt): for every generated
//! module, and every example C/C++ plugin (built by `wasmplug-test-support`),
//! both tools must list the same types, imports, functions, tables,
//! memories, globals, exports, start function, code sizes, data segments
//! and custom sections, with the same kinds, indices, names, signatures,
//! limits and mutability.
//!
//! Without `wasm-objdump` the test fails and says how to install it, unless
//! `WASMPLUG_SKIP_OBJDUMP=1`.
//!
//! The comparison renders each item both ways as the line `wasm-objdump`
//! would print, leaving out the `<name>` tags it guesses from exports, and
//! requires the objdump line to be exactly that, optionally followed by such
//! a tag or an initialiser. Initialisers are never compared: wabt 1.0.32
//! prints some of them (`ref.null`, `v128.const`) from uninitialised memory,
//! see [`unglue`].

#[path = "support/modules.rs"]
mod modules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasmplug_inspect::{ExternKind, ModuleReport, SegmentMode};

#[test]
fn the_report_agrees_with_wasm_objdump() {
    if std::env::var_os("WASMPLUG_SKIP_OBJDUMP").is_some_and(|value| value == "1") {
        println!("WASMPLUG_SKIP_OBJDUMP=1: skipped the comparison with wasm-objdump");
        return;
    }
    if Command::new("wasm-objdump").arg("--version").output().is_err() {
        panic!(
            "wasm-objdump not found: install wabt (`apt-get install wabt`), or set \
             WASMPLUG_SKIP_OBJDUMP=1 to skip this test"
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, bytes) in modules::all_modules() {
        let path = scratch.path().join(format!("{name}.wasm"));
        std::fs::write(&path, &bytes).unwrap();
        compare(&name, &path, &bytes);
        checked += 1;
    }
    let plugins: Vec<PathBuf> = wasmplug_test_support::plugin_names()
        .iter()
        .map(|name| wasmplug_test_support::plugin_path(name).expect("a built plugin"))
        .collect();
    assert!(!plugins.is_empty(), "no example plugins to compare");
    for path in &plugins {
        let bytes = std::fs::read(path).unwrap();
        compare(&path.display().to_string(), path, &bytes);
    }
    println!(
        "checked {checked} generated modules and {} plugins against wasm-objdump",
        plugins.len()
    );
}

/// Sections by objdump's header name (`Import`, `Memory`, ...): item lines
/// without the leading ` - `.
type Sections = BTreeMap<String, Vec<String>>;

fn compare(name: &str, path: &Path, bytes: &[u8]) {
    let output = Command::new("wasm-objdump").arg("-x").arg(path).output().unwrap();
    assert!(
        output.status.success(),
        "wasm-objdump failed on {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs = sections(&String::from_utf8_lossy(&output.stdout));
    let report = ModuleReport::from_bytes(bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
    let ours = expected(&report);
    let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    names.sort();
    names.dedup();
    for section in names {
        let empty = Vec::new();
        let our_lines = ours.get(section).unwrap_or(&empty);
        let their_lines = theirs.get(section).unwrap_or(&empty);
        assert_eq!(
            our_lines.len(),
            their_lines.len(),
            "{name}: section {section} has {} items in the report and {} in wasm-objdump\n\
             ours:   {our_lines:#?}\ntheirs: {their_lines:#?}",
            our_lines.len(),
            their_lines.len()
        );
        for (our, their) in our_lines.iter().zip(their_lines) {
            assert!(
                agrees(our, their),
                "{name}: section {section} differs\n  report:      {our}\n  wasm-objdump: {their}"
            );
        }
    }
}

/// `their` must be `our`, with possibly a `<name>` tag after the index or
/// at the end, or an initialiser (` - init ...`) at the end; for imports and
/// exports the arrow part at the end must be equal.
fn agrees(our: &str, their: &str) -> bool {
    if let Some((our_head, our_tail)) = split_arrow(our) {
        let Some((their_head, their_tail)) = split_arrow(their) else {
            return false;
        };
        return our_tail == their_tail && agrees(our_head, their_head);
    }
    if matches_with_suffix(our, their) {
        return true;
    }
    // Segments carry their `<name>` right after the index:
    // `segment[2] <passive> passive size=16`.
    let Some((head, rest)) = our.split_once(' ') else {
        return false;
    };
    let Some(after_head) = their.strip_prefix(head).and_then(|t| t.strip_prefix(" <")) else {
        return false;
    };
    after_head
        .match_indices("> ")
        .any(|(at, _)| matches_with_suffix(rest, &after_head[at + 2..]))
}

fn matches_with_suffix(our: &str, their: &str) -> bool {
    match their.strip_prefix(our) {
        Some(rest) => rest.is_empty() || rest.starts_with(" <") || rest.starts_with(" - init"),
        None => false,
    }
}

/// Splits ` <- module.name` (imports) or ` -> "name"` (exports) off a line.
fn split_arrow(line: &str) -> Option<(&str, &str)> {
    line.rfind(" <- ")
        .or_else(|| line.rfind(" -> \""))
        .map(|at| line.split_at(at))
}

/// Parses the `Section Details` part of `wasm-objdump -x`.
fn sections(text: &str) -> Sections {
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    let mut custom_header = false;
    for line in unglue(text).lines() {
        if let Some(item) = line.strip_prefix(" - ") {
            let Some(section) = &current else { continue };
            if section == "Custom" {
                // Only the first line after `Custom:` names the section.
                if custom_header {
                    if let Some(name) = item.strip_prefix("name: ") {
                        sections.entry("Custom".into()).or_default().push(name.to_owned());
                    }
                    custom_header = false;
                }
                continue;
            }
            if section == "Start" {
                sections.entry("Start".into()).or_default().push(item.to_owned());
                continue;
            }
            sections.entry(section.clone()).or_default().push(item.to_owned());
        } else if !line.starts_with(' ') && line.ends_with(':') {
            let header = line.trim_end_matches(':');
            let header = header.split('[').next().unwrap_or(header).to_owned();
            custom_header = header == "Custom";
            current = Some(header);
        }
    }
    // Element segments and the data count are not compared: objdump prints
    // their binary flags rather than their meaning.
    sections.remove("Elem");
    sections.remove("DataCount");
    sections
}

/// Puts back on lines of their own the items wabt 1.0.32 runs together.
///
/// For a global initialised with `ref.null` or `v128.const`, `wasm-objdump`
/// reads the initialiser from uninitialised memory: it prints a random
/// ` - init i32=…` on one run, and nothing, not even the line break, on
/// another, so the next global (or the next section's header) continues the
/// same line. Only what it prints reliably is compared: the index, type and
/// mutability of each global, never its initialiser.
fn unglue(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.get(1..).and_then(|tail| tail.find(" - global[")) {
            lines.push(&rest[..=at]);
            rest = &rest[at + 1..];
        }
        lines.push(rest);
    }
    let mut unglued = String::with_capacity(text.len() + 64);
    for line in lines {
        match line.strip_prefix(" - global[").and_then(|_| glued_header(line)) {
            Some(at) => {
                unglued.push_str(&line[..at]);
                unglued.push('\n');
                unglued.push_str(&line[at..]);
            }
            None => unglued.push_str(line),
        }
        unglued.push('\n');
    }
    unglued
}

/// Where a section header (`Export[3]:`) starts at the end of `line`, if
/// one does.
fn glued_header(line: &str) -> Option<usize> {
    let mut head = line.strip_suffix(':')?;
    if let Some(counted) = head.strip_suffix(']') {
        head = counted
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .strip_suffix('[')?;
    }
    let start = head.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    head[start..]
        .starts_with(|c: char| c.is_ascii_uppercase())
        .then_some(start)
}

#[test]
fn globals_run_together_by_wasm_objdump_are_split() {
    // wabt 1.0.32 on `smith_3`, and a last global running into the next header.
    let text = "Global[3]:\n \
                - global[0] funcref mutable=1 - global[1] i32 mutable=1 - init i32=-660647252\n \
                - global[2] v128 mutable=0Export[1]:\n \
                - func[0] <f> -> \"f\"\n";
    let parsed = sections(text);
    assert_eq!(
        parsed["Global"],
        [
            "global[0] funcref mutable=1",
            "global[1] i32 mutable=1 - init i32=-660647252",
            "global[2] v128 mutable=0"
        ]
    );
    assert_eq!(parsed["Export"], ["func[0] <f> -> \"f\""]);
}

/// The lines `wasm-objdump -x` prints for this report, without names.
fn expected(report: &ModuleReport) -> Sections {
    let mut sections = Sections::new();
    let mut push = |section: &str, line: String| {
        sections.entry(section.to_owned()).or_default().push(line);
    };
    for ty in &report.types {
        if let Some(signature) = &ty.signature {
            push("Type", format!("type[{}] {signature}", ty.index));
        }
    }
    for import in &report.imports {
        let detail = match import.kind {
            ExternKind::Func => format!("sig={}", import.type_index.unwrap()),
            ExternKind::Table => table(&report.tables[import.index as usize]),
            ExternKind::Memory => memory(&report.memories[import.index as usize]),
            ExternKind::Global => global(&report.globals[import.index as usize]),
            ExternKind::Tag => format!("sig={}", report.tags[import.index as usize].type_index.unwrap()),
        };
        push(
            "Import",
            format!(
                "{}[{}] {detail} <- {}.{}",
                import.kind.as_str(),
                import.index,
                import.module,
                import.name
            ),
        );
    }
    for function in report.functions.iter().filter(|f| !f.imported) {
        push(
            "Function",
            format!("func[{}] sig={}", function.index, function.type_index.unwrap()),
        );
        push(
            "Code",
            format!("func[{}] size={}", function.index, function.size_bytes.unwrap()),
        );
    }
    for item in report.tables.iter().filter(|t| !t.imported) {
        push("Table", format!("table[{}] {}", item.index, table(item)));
    }
    for item in report.memories.iter().filter(|m| !m.imported) {
        push("Memory", format!("memory[{}] {}", item.index, memory(item)));
    }
    for item in report.globals.iter().filter(|g| !g.imported) {
        push("Global", format!("global[{}] {}", item.index, global(item)));
    }
    for tag in report.tags.iter().filter(|t| !t.imported) {
        push("Tag", format!("tag[{}] sig={}", tag.index, tag.type_index.unwrap()));
    }
    for export in &report.exports {
        push(
            "Export",
            format!("{}[{}] -> \"{}\"", export.kind.as_str(), export.index, export.name),
        );
    }
    if let Some(start) = report.start_function {
        push("Start", format!("start function: {start}"));
    }
    for segment in &report.data_segments {
        let target = match segment.mode {
            SegmentMode::Active => format!("memory={}", segment.memory.unwrap()),
            _ => "passive".to_owned(),
        };
        push(
            "Data",
            format!("segment[{}] {target} size={}", segment.index, segment.size_bytes),
        );
    }
    for custom in &report.custom_sections {
        push("Custom", format!("\"{}\"", custom.name));
    }
    sections
}

fn table(table: &wasmplug_inspect::TableInfo) -> String {
    let mut text = format!("type={} initial={}", table.element_type, table.initial);
    if let Some(maximum) = table.maximum {
        text.push_str(&format!(" max={maximum}"));
    }
    text
}

fn memory(memory: &wasmplug_inspect::MemoryInfo) -> String {
    let mut text = format!("pages: initial={}", memory.initial_pages);
    if let Some(maximum) = memory.maximum_pages {
        text.push_str(&format!(" max={maximum}"));
    }
    if memory.shared {
        text.push_str(" shared");
    }
    if memory.memory64 {
        text.push_str(" i64");
    }
    text
}

fn global(global: &wasmplug_inspect::GlobalInfo) -> String {
    format!("{} mutable={}", global.ty, u8::from(global.mutable))
}
