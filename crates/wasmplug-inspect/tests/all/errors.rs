//! Bad input: every kind of file that is not a module wasmplug can read
//! gives one clear line, with the byte offset where the parser gave one.

use wasmplug_inspect::{InspectError, ModuleReport};

use crate::modules::wat_module;

/// Reads `bytes`, which must fail, and snapshots `code: message`.
fn check(name: &str, bytes: &[u8]) -> InspectError {
    let error = match ModuleReport::from_bytes(bytes) {
        Ok(report) => panic!("{name} was read: {}", report.render_text()),
        Err(error) => error,
    };
    let line = format!("{}: {error}", error.code());
    assert!(!line.contains('\n'), "{name}: {line}");
    insta::assert_snapshot!(format!("error_{name}"), line);
    error
}

#[test]
fn an_empty_file() {
    assert_eq!(check("empty", b""), InspectError::Empty);
}

#[test]
fn foreign_files_say_what_they_are() {
    check("elf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    check("text", b"hello, I am a text file\n");
    check("wat_text", b"(module (func))");
    check("random_bytes", &[0x9c, 0x01, 0xfe, 0x42, 0x00, 0x17, 0x88]);
    check("pe", b"MZ\x90\0\x03\0\0\0");
}

#[test]
fn a_component_is_named_as_such() {
    let error = check("component", b"\0asm\x0d\0\x01\0");
    assert!(error
        .to_string()
        .starts_with("this is a component, wasmplug loads core modules"));
}

#[test]
fn truncated_files_point_at_the_end() {
    check("truncated_magic", b"\0as");
    check("truncated_version", b"\0asm\x01\0");
    let plugin = wat_module("plugin");
    let error = check("truncated_plugin", &plugin[..plugin.len() - 7]);
    assert!(error.offset().is_some(), "{error}");
}

#[test]
fn an_unknown_version() {
    check("unknown_version", b"\0asm\x02\0\0\0");
}

#[test]
fn a_valid_header_with_a_corrupt_section() {
    // Section id 1 (types) claims 0x7f bytes but the file ends.
    check("section_too_long", b"\0asm\x01\0\0\0\x01\x7f\x01");
    // An unknown section id.
    check("unknown_section", b"\0asm\x01\0\0\0\x0e\x01\0");
    // A type section whose entry is not a function type.
    check("bad_type_form", b"\0asm\x01\0\0\0\x01\x02\x01\x42");
}

#[test]
fn an_invalid_function_body_points_into_the_code_section() {
    // `(func (result i32))` with an empty body: the validator wants an i32.
    let bytes = b"\0asm\x01\0\0\0\x01\x05\x01\x60\0\x01\x7f\x03\x02\x01\0\x0a\x04\x01\x02\0\x0b";
    let error = check("type_mismatch", bytes);
    assert_eq!(error.offset(), Some(bytes.len() - 1));
}
