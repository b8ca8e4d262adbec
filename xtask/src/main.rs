//! `cargo xtask <command>`: build the C/C++ plugins and look inside wasm
//! modules. Run `cargo xtask help` for the commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use wasmplug_inspect::ModuleReport;
use xshell::Shell;
use xtask::{build_plugins, plugins_out_dir, project_root};

const HELP: &str = "\
cargo xtask <command>

commands:
    build-plugins            compile cpp-plugins/* into target/plugins/*.wasm
                             (only what changed)
    inspect <path-or-name>   print a module's imports, exports and memories;
                             a bare name like `numeric` means the built plugin
                             target/plugins/numeric.wasm
    help                     print this message
";

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("build-plugins") => {
            no_more_arguments("build-plugins", &rest)?;
            build_plugins()?;
        }
        Some("inspect") => {
            let [target] = rest.as_slice() else {
                bail!("usage: cargo xtask inspect <path-or-plugin-name>");
            };
            let path = resolve_module(target)?;
            let bytes = sh
                .read_binary_file(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report =
                ModuleReport::from_bytes(&bytes).with_context(|| format!("cannot inspect {}", path.display()))?;
            print!("{}", report.render_text());
        }
        Some("help" | "--help" | "-h") | None => print!("{HELP}"),
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
    Ok(())
}

fn no_more_arguments(command: &str, rest: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = rest.first() {
        bail!("`{command}` takes no arguments, got `{extra}`");
    }
    Ok(())
}

/// A path to a module as given, or the built plugin of that name.
fn resolve_module(target: &str) -> anyhow::Result<PathBuf> {
    let looks_like_path =
        target.contains(std::path::MAIN_SEPARATOR) || target.contains('/') || target.ends_with(".wasm");
    if looks_like_path {
        let path = Path::new(target);
        // The shell runs in the project root; keep paths relative to where
        // the user typed them.
        return std::env::current_dir()
            .map(|dir| dir.join(path))
            .context("cannot read the current directory");
    }
    build_plugins()?;
    let path = plugins_out_dir().join(format!("{target}.wasm"));
    if !path.is_file() {
        bail!("no plugin named `{target}` in {}", plugins_out_dir().display());
    }
    Ok(path)
}
