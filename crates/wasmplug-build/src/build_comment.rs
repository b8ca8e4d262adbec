//! The leading comment of a plugin source, which says how to build it:
//!
//! ```text
//! // wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=process -O3
//! // wasmplug-allow-imports: env
//! ```
//!
//! `wasmplug-build` gives the compiler flags; the build adds the target,
//! the include directory and the output itself. [`crate::build_all`] (the
//! repository's plugins) requires the line; [`crate::build`] (`wasmplug
//! build`) uses it when present, and otherwise the flags the plugin's kind
//! needs ([`crate::PluginKind`]). The optional
//! `wasmplug-allow-imports` names import modules besides `wasmplug` and
//! `wasi_snapshot_preview1` that the built module may use (only adversarial
//! plugins need it).

use anyhow::{bail, Context as _};

const BUILD_KEY: &str = "wasmplug-build:";
const ALLOW_IMPORTS_KEY: &str = "wasmplug-allow-imports:";

/// Flags that the build sets itself, or that would drop the name section.
const RESERVED_FLAGS: &[&str] = &["--target", "-target", "-o", "-s", "-Wl,-s", "-Wl,--strip-all"];

/// What the leading comment of a plugin source asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildComment {
    /// Compiler flags, in order, split on whitespace.
    pub flags: Vec<String>,
    /// Import modules allowed beyond `wasmplug` and `wasi_snapshot_preview1`.
    pub allowed_import_modules: Vec<String>,
}

impl BuildComment {
    /// Whether `source` has a `// wasmplug-build:` line in its leading
    /// comment.
    pub fn is_present(source: &str) -> bool {
        source
            .lines()
            .map_while(|line| line.trim_start().strip_prefix("//"))
            .any(|comment| comment.trim().starts_with(BUILD_KEY))
    }

    /// Reads the `//` comment lines at the top of `source`; the first
    /// non-comment line ends the search.
    pub fn parse(source: &str) -> anyhow::Result<BuildComment> {
        let mut flags = None;
        let mut allowed_import_modules = Vec::new();
        for line in source.lines() {
            let Some(comment) = line.trim_start().strip_prefix("//") else {
                break;
            };
            let comment = comment.trim();
            if let Some(rest) = comment.strip_prefix(BUILD_KEY) {
                if flags.is_some() {
                    bail!("more than one `// {BUILD_KEY}` line");
                }
                let parsed: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
                for flag in &parsed {
                    check_flag(flag)?;
                }
                flags = Some(parsed);
            } else if let Some(rest) = comment.strip_prefix(ALLOW_IMPORTS_KEY) {
                allowed_import_modules.extend(rest.split_whitespace().map(str::to_owned));
            }
        }
        let flags = flags.with_context(|| format!("no `// {BUILD_KEY} <flags>` line in the leading comment"))?;
        Ok(BuildComment {
            flags,
            allowed_import_modules,
        })
    }
}

fn check_flag(flag: &str) -> anyhow::Result<()> {
    let name = flag.split_once('=').map_or(flag, |(name, _)| name);
    if RESERVED_FLAGS.contains(&name) {
        bail!(
            "flag `{flag}` is not allowed: the build sets the target and output, \
             and plugins keep their name section"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, expect: Result<(&[&str], &[&str]), &str>) {
        let actual = BuildComment::parse(source).map_err(|error| format!("{error:#}"));
        match (actual, expect) {
            (Ok(comment), Ok((flags, allowed))) => {
                assert_eq!(comment.flags, flags);
                assert_eq!(comment.allowed_import_modules, allowed);
            }
            (Err(actual), Err(expected)) => assert!(
                actual.contains(expected),
                "error `{actual}` does not mention `{expected}`"
            ),
            (actual, expect) => panic!("got {actual:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn seed_flags() {
        check(
            "// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=process -O3\n\
             extern \"C\" int process(int x) { return (x * 2) + 1; }\n",
            Ok((&["-nostdlib", "-Wl,--no-entry", "-Wl,--export=process", "-O3"], &[])),
        );
    }

    #[test]
    fn later_comment_lines_and_extra_whitespace() {
        check(
            "// wasmplug-build:   -mexec-model=reactor\t-O2  \n\
             // wasmplug-allow-imports: env other\n\
             // A plugin.\n\
             int x;\n",
            Ok((&["-mexec-model=reactor", "-O2"], &["env", "other"])),
        );
    }

    #[test]
    fn empty_flags_are_allowed() {
        check("// wasmplug-build:\nint main(void) { return 0; }\n", Ok((&[], &[])));
    }

    #[test]
    fn comment_must_lead() {
        check(
            "#include <stdint.h>\n// wasmplug-build: -O3\n",
            Err("no `// wasmplug-build: <flags>` line"),
        );
        check("", Err("no `// wasmplug-build: <flags>` line"));
    }

    #[test]
    fn duplicate_build_line() {
        check("// wasmplug-build: -O1\n// wasmplug-build: -O2\n", Err("more than one"));
    }

    #[test]
    fn reserved_flags() {
        check(
            "// wasmplug-build: --target=wasm32-unknown-unknown\n",
            Err("`--target=wasm32-unknown-unknown` is not allowed"),
        );
        check("// wasmplug-build: -O2 -o out.wasm\n", Err("`-o` is not allowed"));
        check(
            "// wasmplug-build: -Wl,--strip-all\n",
            Err("`-Wl,--strip-all` is not allowed"),
        );
    }
}
