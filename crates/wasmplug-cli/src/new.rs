//! `wasmplug new NAME [--lang c|cpp] [--bytes]`: a plugin to start from,
//! with the SDK header beside it; no repository needed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use wasmplug_build::Language;

/// Arguments of `wasmplug new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name: 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter.
    name: String,
    /// c, or cpp (C++ with libc++).
    #[arg(long, default_value = "c")]
    lang: Language,
    /// A bytes-ABI function (bytes in, bytes out) instead of a numeric one.
    #[arg(long)]
    bytes: bool,
    /// Where to write the files.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// Runs the verb.
pub fn run(args: NewArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    if !wasmplug_server::is_valid_name(&args.name) || !args.name.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!(
            "`{}` cannot name a plugin: use 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter",
            args.name
        );
    }
    let function = args.name.replace('-', "_");
    if RESERVED.contains(&function.as_str()) || function.starts_with("wasmplug_") {
        bail!(
            "`{}` would name the plugin's function `{function}`, which C, C++, libc or wasmplug.h already use: \
             pick another name",
            args.name
        );
    }
    let template = wasmplug_build::template(&args.name, args.lang, args.bytes);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let source = args.dir.join(&template.file_name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&source)
        .and_then(|mut file| file.write_all(template.source.as_bytes()))
        .with_context(|| {
            format!(
                "cannot create {} (an existing file is never overwritten)",
                source.display()
            )
        })?;
    let header = args.dir.join("wasmplug.h");
    let header_note = if header.exists() {
        "kept the wasmplug.h already there"
    } else {
        std::fs::write(&header, wasmplug_build::HEADER)
            .with_context(|| format!("cannot write {}", header.display()))?;
        "wrote wasmplug.h beside it"
    };
    let (shown, cd) = if args.dir == std::path::Path::new(".") {
        (PathBuf::from(&template.file_name), String::new())
    } else {
        (source.clone(), format!("\n    cd {}", args.dir.display()))
    };
    writeln!(
        stdout,
        "created {} ({header_note})\nnext:{cd}\n    wasmplug build {}\n    {}\n    wasmplug serve --plugins .",
        shown.display(),
        template.file_name,
        template.try_it
    )?;
    Ok(0)
}

/// Function names a new plugin cannot take: C and C++ keywords, `main`,
/// and the libc functions a plugin most often calls.
const RESERVED: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "asm",
    "auto",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "constexpr",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "nullptr",
    "operator",
    "or",
    "private",
    "protected",
    "public",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
    "xor",
    "main",
    "abort",
    "calloc",
    "exit",
    "free",
    "malloc",
    "memcmp",
    "memcpy",
    "memmove",
    "memset",
    "printf",
    "puts",
    "realloc",
    "strcmp",
    "strcpy",
    "strlen",
];
