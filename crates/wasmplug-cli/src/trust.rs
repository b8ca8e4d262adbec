//! `wasmplug keygen`, `sign`, `verify` and `token`: the keys that sign
//! modules and the tokens that change plugins. Keys and signatures are in
//! the WebAssembly tool-conventions format, so `wasmsign2` reads what these
//! write and the other way round.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use wasmplug_trust::signing::{self, TrustedKeys};
use wasmplug_trust::tokens::{self, Role};

/// Arguments of `wasmplug keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Writes `<NAME>.key` (the secret key, readable only by you) and
    /// `<NAME>.pub` (the public key, for `--trusted-keys`).
    #[arg(long, default_value = "wasmplug")]
    name: PathBuf,
}

/// Arguments of `wasmplug sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The module to sign.
    module: PathBuf,
    /// The secret key (as `wasmplug keygen` or `wasmsign2 keygen` writes it).
    #[arg(long, short = 'k')]
    key: PathBuf,
    /// Where to write the signed module (default: over the module).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Write the signature here, detached, and leave the module unchanged.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    detached: Option<PathBuf>,
}

/// Arguments of `wasmplug verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The module to check.
    module: PathBuf,
    /// The public keys to accept: a key file, or a directory of `*.pub` files.
    #[arg(long, env = "WASMPLUG_TRUSTED_KEYS", value_name = "DIR|FILE")]
    trusted_keys: PathBuf,
    /// A detached signature for the module.
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
}

/// Arguments of `wasmplug token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a new token, add its hashed line to the token file, and print
    /// the token (the only time it is shown).
    Add {
        /// The token's name, as the audit trail records it.
        name: String,
        /// The token file (created if missing).
        #[arg(long, env = "WASMPLUG_TOKEN_FILE")]
        file: PathBuf,
        /// reader, publisher or admin.
        #[arg(long)]
        role: Role,
        /// Plugin-name patterns the token may touch (`image-*`); repeatable.
        /// None: every plugin.
        #[arg(long = "plugins", value_name = "PATTERN")]
        patterns: Vec<String>,
    },
}

/// `wasmplug keygen`.
pub fn keygen(args: KeygenArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let pair = signing::generate_key_pair();
    let secret = args.name.with_extension("key");
    let public = args.name.with_extension("pub");
    write_new(&secret, &pair.secret, 0o600)?;
    write_new(&public, &pair.public, 0o644)?;
    let key_id = signing::key_id_of_public(&pair.public)?;
    writeln!(
        stdout,
        "secret key: {}\npublic key: {} (key id {key_id})",
        secret.display(),
        public.display()
    )?;
    Ok(0)
}

/// `wasmplug sign`.
pub fn sign(args: SignArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let module = std::fs::read(&args.module).with_context(|| format!("cannot read {}", args.module.display()))?;
    let key = std::fs::read(&args.key).with_context(|| format!("cannot read {}", args.key.display()))?;
    let signed = signing::sign(&module, &key, args.detached.is_some())
        .with_context(|| format!("cannot sign {}", args.module.display()))?;
    match (&args.detached, signed.detached) {
        (Some(_), Some(_)) if signed.module != module => anyhow::bail!(
            "{} already carries a signature: a detached one would not verify against it (sign a copy without --detached, or the unsigned module)",
            args.module.display()
        ),
        (Some(path), Some(signature)) => {
            std::fs::write(path, signature).with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(stdout, "signature of {} written to {}", args.module.display(), path.display())?;
        }
        _ => {
            let out = args.out.as_ref().unwrap_or(&args.module);
            std::fs::write(out, signed.module).with_context(|| format!("cannot write {}", out.display()))?;
            writeln!(stdout, "signed module written to {}", out.display())?;
        }
    }
    Ok(0)
}

/// `wasmplug verify`: exit 0 and name the key, or exit 1 with the reason.
pub fn verify(args: VerifyArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> anyhow::Result<u8> {
    let keys = TrustedKeys::load(&args.trusted_keys)?;
    let module = std::fs::read(&args.module).with_context(|| format!("cannot read {}", args.module.display()))?;
    let detached = match &args.signature {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    match keys.verify(&module, detached.as_deref()) {
        Ok(key) => {
            writeln!(
                stdout,
                "{}: signed by {} (key id {})",
                args.module.display(),
                key.name,
                key.key_id
            )?;
            Ok(0)
        }
        Err(untrusted) => {
            writeln!(stderr, "{}: {untrusted}", args.module.display())?;
            Ok(1)
        }
    }
}

/// `wasmplug token …`.
pub fn token(args: TokenArgs, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    match args.command {
        TokenCommand::Add {
            name,
            file,
            role,
            patterns,
        } => {
            tokens::check_entry(&name, &patterns).map_err(anyhow::Error::msg)?;
            let token = tokens::generate_token();
            let line = tokens::token_line(&name, role, &tokens::hash_token(&token), &patterns);
            let mut text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(error) => return Err(error).with_context(|| format!("cannot read {}", file.display())),
            };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            text.push('\n');
            // Check the whole file as the service will read it (duplicate
            // names and the like), then replace it in one rename.
            let candidate = file.with_extension("new");
            write_private(&candidate, text.as_bytes())?;
            if let Err(error) = tokens::Tokens::new(Some(candidate.clone()), None) {
                let _ = std::fs::remove_file(&candidate);
                return Err(error).context("the token file would not be valid");
            }
            std::fs::rename(&candidate, &file).with_context(|| format!("cannot write {}", file.display()))?;
            writeln!(stdout, "{token}")?;
            Ok(0)
        }
    }
}

/// Writes a file that must not exist yet, with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// Writes (or replaces) a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
