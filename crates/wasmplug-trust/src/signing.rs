//! Module signatures, the keys a service trusts, and a manifest's `sha256` pin.
//!
//! # Format
//!
//! Signatures follow the WebAssembly tool-conventions signature format (`Signatures.md`), exactly as the
//! [`wasmsign2`] crate and its CLI (`wasmsign2 keygen | sign | verify | detach`) write them, so modules and keys
//! move between this service and that CLI in both directions:
//!
//! - The first section of a signed module is a custom section named `signature`. It holds a specification
//!   version (1), a content type (1: a module), a hash function (1: SHA-256) and sets of hashes, each set with
//!   Ed25519 signatures over `"wasmsig" ‖ 01 ‖ 01 ‖ 01 ‖ hashes`. A hash covers the module's bytes after the
//!   signature section (up to a `signature_delimiter` section, for partial signatures), so the signature does not
//!   sign itself.
//! - A signature may carry a *key id*. [`sign`] always embeds wasmsign2's default key id of the signing key, which
//!   is also what [`TrustedKey::key_id`] and [`key_id_of_public`] report: the first 12 bytes of HMAC-SHA-256 (key:
//!   the 32-byte Ed25519 public key, message: `"key_id"`), in lowercase hex. [`signature_key_ids`] lists whatever
//!   key ids a module's signatures carry.
//! - A *detached* signature is the payload of that custom section kept in a file of its own (`wasmsign2 sign -S`,
//!   `wasmsign2 detach`); it is checked against a module that carries no signature section.
//! - Keys are Ed25519, in any format wasmsign2 reads: its raw format (`0x01 ‖ key` for a public key,
//!   `0x81 ‖ seed ‖ public key` for a secret key, as `wasmsign2 keygen` writes them), PEM, DER, or OpenSSH.
//!
//! # Trusted keys
//!
//! [`TrustedKeys`] is a non-empty set of named public keys: one key file, or every `*.pub` file of a directory,
//! each named after its file stem and kept in name order. Each key has its default key id attached, as
//! `wasmsign2 verify -K` does: a signature that names a different key id is never tried with it, a signature
//! without a key id is tried with every key.
//!
//! # Verdicts
//!
//! [`TrustedKeys::verify`] returns the trusted key that signed the whole module, or why it did not trust it:
//!
//! - [`Untrusted::Unsigned`]: there is no signature (no `signature` section first, no detached signature), or
//!   the bytes are not a WebAssembly module at all, so none could be embedded.
//! - [`Untrusted::UnknownKey`]: there are signatures, but no trusted key made a valid signature over the hashes.
//! - [`Untrusted::BadSignature`]: a trusted key did sign hashes, but the module's contents no longer match them
//!   (the module was altered after signing); or the signature data is malformed, misplaced (a `signature` section
//!   that is not the first one), or cannot apply to the bytes at all (a detached signature for non-wasm bytes).
//! - [`Untrusted::PinMismatch`] comes from [`check_pin`]: the manifest's `sha256` names other bytes.
//!
//! The verdict comes from wasmsign2's error *variants* (never their messages); see [`TrustedKeys::verify`] for how
//! the one ambiguous variant is resolved.
//!
//! Module and signature bytes are untrusted: nothing here panics on them, and because wasmsign2 allocates every
//! length field it reads (up to 4 GiB) before checking that the bytes are there, every length is checked against
//! the bytes actually present before wasmsign2 sees them.

use std::fmt;
use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmsign2::{Module, PublicKey, PublicKeySet, SecretKey, WSError};

/// The 8-byte preambles wasmsign2 accepts: a core module (version 1) and a component.
const WASM_HEADERS: [[u8; 8]; 2] = [
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00],
];
/// The name of the custom section that carries the signatures.
const SIGNATURE_SECTION_NAME: &[u8] = b"signature";
/// wasmsign2's limit on hash sets per signature section and on hashes per set (`MAX_HASHES`).
const MAX_HASHES: u32 = 64;
/// wasmsign2's limit on signatures per hash set (`MAX_SIGNATURES`).
const MAX_SIGNATURES: u32 = 256;
/// Bytes in one SHA-256 hash.
const HASH_BYTES: usize = 32;
/// The algorithm id of an Ed25519 signature.
const ED25519_ALG_ID: u8 = 0x01;

/// A non-empty set of named Ed25519 public keys whose signatures are trusted, in name order.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
    set: PublicKeySet,
}

/// One trusted public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key's name: the stem of the file it was read from (`alice` for `keys/alice.pub`).
    pub name: String,
    /// wasmsign2's default key id of this key (`PublicKey::attach_default_key_id`), in lowercase hex.
    pub key_id: String,
    public_key: PublicKey,
}

impl TrustedKeys {
    /// Loads trusted keys from `path`.
    ///
    /// `path` is a key file (its name is the file stem) or a directory: every regular file in it whose name ends
    /// in `.pub` is one key (name = stem); other files ignored. Each file may be in any format wasmsign2's
    /// `PublicKey::from_any` reads (raw wasmsign2 bytes, PEM, DER, OpenSSH ed25519). A directory with no keys, an
    /// unreadable or unparsable key file, or two files holding the same key, is an error.
    ///
    /// Symbolic links are followed (secret volumes are often mounted as links).
    pub fn load(path: &Path) -> Result<TrustedKeys, KeyError> {
        let metadata = fs::metadata(path).map_err(io_error(path))?;
        let mut files = if metadata.is_dir() {
            key_files_in(path)?
        } else {
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            vec![(name, path.to_path_buf())]
        };
        if files.is_empty() {
            return Err(KeyError::NoKeys(path.to_path_buf()));
        }
        files.sort();

        let mut keys = Vec::with_capacity(files.len());
        let mut set = PublicKeySet::empty();
        for (name, file) in files {
            let bytes = fs::read(&file).map_err(io_error(&file))?;
            let public_key = parse_public_key(&bytes).map_err(|reason| KeyError::Invalid {
                path: file.clone(),
                reason,
            })?;
            // Every key carries its default key id, so the same key bytes always make the same set entry.
            if let Err(WSError::DuplicatePublicKey) = set.insert(public_key.clone()) {
                return Err(KeyError::Duplicate { path: file });
            }
            keys.push(TrustedKey {
                name,
                key_id: key_id_hex(&public_key),
                public_key,
            });
        }
        Ok(TrustedKeys { keys, set })
    }

    /// The trusted keys, in name order.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Verifies the module's embedded signature (or `detached`, a detached signature as `wasmsign2 detach`/`sign
    /// -S` writes it) against every trusted key. Ok: the first trusted key (by name order) with a valid signature
    /// over the whole module.
    ///
    /// How a failure is classified (see the module docs for the verdicts):
    ///
    /// 1. Before wasmsign2 sees anything: bytes that are not a WebAssembly module are [`Untrusted::Unsigned`]
    ///    (nothing can be embedded in them), or [`Untrusted::BadSignature`] with a detached signature (which
    ///    cannot be over them). A module with no section at all is [`Untrusted::Unsigned`] (wasmsign2 calls it a
    ///    parse error). A length that runs past the end of the bytes is malformed, hence
    ///    [`Untrusted::BadSignature`], unless the module is plainly unsigned (its first section is readable and
    ///    not a signature, no detached signature).
    /// 2. `PublicKeySet::verify` checks every trusted key at once. `Ok` names the keys whose signature covers the
    ///    whole module; `NoSignatures` is [`Untrusted::Unsigned`] (or [`Untrusted::BadSignature`] if a `signature`
    ///    section sits later in the module, where wasmsign2 ignores it); any other error but
    ///    `VerificationFailed` (`ParseError`, `Eof`, `IOError`, `CryptoError`, ...) means malformed signature data
    ///    or module: [`Untrusted::BadSignature`].
    /// 3. `VerificationFailed` is ambiguous: it means both "no trusted key signed any hash" and "a trusted key
    ///    signed hashes, but none is the hash of this module". Each trusted key then runs
    ///    `PublicKey::verify_multi(module, detached, |_| true)`, which in wasmsign2 0.2.8 parses the signature
    ///    data exactly as the set did (any error there is malformed data), computes the hashes this key signed
    ///    validly (`valid_hashes_for_pk`: signatures naming another key id are skipped, a signature that is not 64
    ///    bytes is a `CryptoError`), and returns `Err(VerificationFailed)` at exactly one place: when that set is
    ///    empty. Past that point it can only return `Ok` (it checks hashes at `signature_delimiter` sections
    ///    only, so a module signed whole is not checked at all), `VerificationFailedForPredicates`, or a parse
    ///    error. So `Err(VerificationFailed)` from every key is [`Untrusted::UnknownKey`]; anything else from any
    ///    key means a trusted key signed hashes that this module no longer matches: [`Untrusted::BadSignature`].
    pub fn verify(&self, module: &[u8], detached: Option<&[u8]>) -> Result<&TrustedKey, Untrusted> {
        let Some(layout) = scan_module(module) else {
            return Err(if detached.is_some() {
                Untrusted::BadSignature
            } else {
                Untrusted::Unsigned
            });
        };
        if detached.is_none() && !layout.has_sections {
            // wasmsign2 reports a `ParseError` for a module without sections; it is simply unsigned.
            return Err(Untrusted::Unsigned);
        }
        let signature_data = detached.or(layout.signature);
        let overruns =
            layout.overrun_at.is_some() || signature_data.is_some_and(|data| !signature_data_is_bounded(data));
        if overruns {
            let plainly_unsigned =
                signature_data.is_none() && layout.overrun_at != Some(0) && !layout.misplaced_signature;
            return Err(if plainly_unsigned {
                Untrusted::Unsigned
            } else {
                Untrusted::BadSignature
            });
        }

        match self.set.verify(&mut Cursor::new(module), detached) {
            Ok(valid) => self
                .keys
                .iter()
                .find(|key| valid.contains(&key.public_key))
                .ok_or(Untrusted::BadSignature),
            Err(WSError::NoSignatures) if layout.misplaced_signature => Err(Untrusted::BadSignature),
            Err(WSError::NoSignatures) => Err(Untrusted::Unsigned),
            Err(WSError::VerificationFailed) => Err(self.classify_failure(module, detached)),
            Err(_) => Err(Untrusted::BadSignature),
        }
    }

    /// Tells [`Untrusted::UnknownKey`] from [`Untrusted::BadSignature`] after `PublicKeySet::verify` returned
    /// `VerificationFailed`; the reasoning is in [`TrustedKeys::verify`]'s docs.
    fn classify_failure(&self, module: &[u8], detached: Option<&[u8]>) -> Untrusted {
        for key in &self.keys {
            match key
                .public_key
                .verify_multi(&mut Cursor::new(module), detached, |_| true)
            {
                // This key made no valid signature over any hash.
                Err(WSError::VerificationFailed) => continue,
                // This key signed hashes (or the data is malformed), yet the whole module did not verify.
                _ => return Untrusted::BadSignature,
            }
        }
        Untrusted::UnknownKey
    }
}

/// Why a module is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// No signature section (and no detached signature).
    #[error("unsigned: the module carries no signature")]
    Unsigned,
    /// Signed, but no signature verifies with any trusted key (over its hashes).
    #[error("unknown key: no trusted key signed this module")]
    UnknownKey,
    /// A trusted key signed hashes, but the module's contents do not match them (tampered), or the signature
    /// section is malformed.
    #[error("bad signature: the module's contents do not match its signature")]
    BadSignature,
    /// The manifest's `sha256` pin names other bytes.
    #[error("pinned: the manifest pins sha256 {}, the module is {actual}", .expected.escape_debug())]
    PinMismatch {
        /// The pinned SHA-256, as the manifest gives it, in lowercase.
        expected: String,
        /// The SHA-256 of the module, in lowercase hex.
        actual: String,
    },
}

impl Untrusted {
    /// A stable, machine-readable name for the verdict: `unsigned`, `unknown_key`, `bad_signature` or
    /// `pin_mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            Untrusted::Unsigned => "unsigned",
            Untrusted::UnknownKey => "unknown_key",
            Untrusted::BadSignature => "bad_signature",
            Untrusted::PinMismatch { .. } => "pin_mismatch",
        }
    }
}

/// Why trusted keys could not be loaded, or a public key not read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file or directory could not be read.
    #[error("cannot read trusted key {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A key file (or key bytes) holds no public key wasmsign2 can read.
    #[error("{}", invalid_key_message(.path, .reason))]
    Invalid {
        /// The key file; empty when the key was given as bytes ([`key_id_of_public`]).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory holds no `.pub` file.
    #[error("no trusted keys: {} holds no `.pub` key file", .0.display())]
    NoKeys(PathBuf),
    /// The file holds the same key as another key file.
    #[error("duplicate trusted key: {} holds a key that another key file already holds", .path.display())]
    Duplicate {
        /// The later file (in name order) holding the key.
        path: PathBuf,
    },
}

/// Key ids (hex) of the signatures embedded in a module, checked against nothing, each once, in the order they
/// appear; `None` when unsigned or the section is malformed. (For reporting "signed, by which key" when no trusted
/// keys are configured.) Signatures without a key id are not listed, so a module signed only without key ids
/// gives an empty list.
pub fn signature_key_ids(module: &[u8]) -> Option<Vec<String>> {
    let layout = scan_module(module)?;
    if !signature_data_is_bounded(layout.signature?) {
        return None;
    }
    let info = wasmsign2::signature_info_from_reader(&mut Cursor::new(module), None).ok()?;
    if !info.is_signed() {
        return None;
    }
    let mut ids: Vec<String> = Vec::new();
    for id in info.key_ids().iter().map(hex::encode) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Some(ids)
}

/// `Err(Untrusted::PinMismatch)` when `pin` is Some and differs (case-insensitive hex) from the SHA-256 of
/// `module`.
pub fn check_pin(module: &[u8], pin: Option<&str>) -> Result<(), Untrusted> {
    let Some(pin) = pin else {
        return Ok(());
    };
    let actual = hex::encode(Sha256::digest(module));
    if pin.eq_ignore_ascii_case(&actual) {
        Ok(())
    } else {
        Err(Untrusted::PinMismatch {
            expected: pin.to_ascii_lowercase(),
            actual,
        })
    }
}

/// A new key pair in wasmsign2's raw format (what `wasmsign2 keygen` writes): `secret` for `-k`, `public` for
/// `-K`.
#[derive(Clone)]
pub struct KeyPair {
    /// The secret key: `0x81 ‖ seed ‖ public key`, 65 bytes.
    pub secret: Vec<u8>,
    /// The public key: `0x01 ‖ public key`, 33 bytes.
    pub public: Vec<u8>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("secret", &"<redacted>")
            .field("public", &hex::encode(&self.public))
            .finish()
    }
}

/// Generates a new Ed25519 key pair from the operating system's random number generator.
pub fn generate_key_pair() -> KeyPair {
    let pair = wasmsign2::KeyPair::generate();
    KeyPair {
        secret: pair.sk.to_bytes(),
        public: pair.pk.to_bytes(),
    }
}

/// A signed module, as [`sign`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The module: with the signature embedded, or, for a detached signature, without any signature section
    /// (as wasmsign2 re-encodes it, which is byte for byte the input for an unsigned module from a usual
    /// toolchain); ship exactly these bytes.
    pub module: Vec<u8>,
    /// The detached signature, when one was asked for (what `wasmsign2 sign -S` writes).
    pub detached: Option<Vec<u8>>,
}

/// Why a module could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The secret key cannot be read, or its halves do not belong together.
    #[error("invalid signing key: {0}")]
    InvalidKey(String),
    /// The module cannot be read as WebAssembly.
    #[error("cannot sign the module: {0}")]
    InvalidModule(String),
}

/// Signs `module` with `secret_key` (any format `SecretKey::from_any` reads), replacing any signature it had, and
/// embeds the key id of the key's public half (as `wasmsign2 sign -K` does), so `wasmsign2 verify -K` finds it.
/// Returns the signed module bytes. With `detached = true`, returns the module without a signature section and,
/// separately, the detached signature.
pub fn sign(module: &[u8], secret_key: &[u8], detached: bool) -> Result<Signed, SignError> {
    let secret_key = parse_secret_key(secret_key).map_err(SignError::InvalidKey)?;
    let public_key = PublicKey {
        pk: secret_key.sk.public_key(),
        key_id: None,
    }
    .attach_default_key_id();

    let layout = scan_module(module).ok_or_else(|| SignError::InvalidModule(NOT_WASM.to_owned()))?;
    if let Some(index) = layout.overrun_at {
        return Err(SignError::InvalidModule(format!(
            "section {index} declares more bytes than the module holds"
        )));
    }
    let mut parsed =
        Module::deserialize(&mut Cursor::new(module)).map_err(|e| SignError::InvalidModule(describe(&e)))?;
    // `sign_multi` adds to a signature it finds first and drops any later one; replace them all instead.
    parsed.sections.retain(|section| !section.is_signature_header());
    let (signed, signature) = secret_key
        .sign_multi(parsed, public_key.key_id(), detached, false)
        .map_err(|e| SignError::InvalidModule(describe(&e)))?;
    let mut out = Vec::with_capacity(module.len() + if detached { 0 } else { signature.len() + 16 });
    signed
        .serialize(&mut out)
        .map_err(|e| SignError::InvalidModule(describe(&e)))?;
    Ok(Signed {
        module: out,
        detached: detached.then_some(signature),
    })
}

/// The hex key id wasmsign2 gives a public key (`attach_default_key_id`), for a public key in any format; used to
/// name keys in output.
pub fn key_id_of_public(public_key: &[u8]) -> Result<String, KeyError> {
    let public_key = parse_public_key(public_key).map_err(|reason| KeyError::Invalid {
        path: PathBuf::new(),
        reason,
    })?;
    Ok(key_id_hex(&public_key))
}

const NOT_WASM: &str = "not a WebAssembly module (no `\\0asm` header)";

/// The `*.pub` regular files of `dir`, with their names (file stems).
fn key_files_in(dir: &Path) -> Result<Vec<(String, PathBuf)>, KeyError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(name) = file_name.strip_suffix(".pub").filter(|name| !name.is_empty()) else {
            continue;
        };
        let path = entry.path();
        if fs::metadata(&path).map_err(io_error(&path))?.is_file() {
            files.push((name.to_owned(), path));
        }
    }
    Ok(files)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid_key_message(path: &Path, reason: &str) -> String {
    if path.as_os_str().is_empty() {
        format!("invalid public key: {reason}")
    } else {
        format!("invalid trusted key {}: {reason}", path.display())
    }
}

/// A public key in any format wasmsign2 reads, with its default key id attached.
fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, String> {
    match PublicKey::from_any(bytes) {
        Ok(public_key) => Ok(public_key.attach_default_key_id()),
        Err(_) if looks_like_secret_key(bytes) => Err("this is a secret key; trust its public half".to_owned()),
        Err(_) => Err("not an Ed25519 public key in wasmsign2's raw format, PEM, DER or OpenSSH".to_owned()),
    }
}

fn key_id_hex(public_key: &PublicKey) -> String {
    public_key.key_id().map(hex::encode).unwrap_or_default()
}

/// Only parsers that cannot panic are used here (see [`parse_secret_key`]).
fn looks_like_secret_key(bytes: &[u8]) -> bool {
    SecretKey::from_bytes(bytes).is_ok()
        || SecretKey::from_der(bytes).is_ok()
        || std::str::from_utf8(bytes).is_ok_and(|text| text.contains("PRIVATE KEY-----"))
}

/// A secret key in any format `SecretKey::from_any` reads, tried in the same order, whose public half belongs to
/// its seed.
///
/// `SecretKey::from_any` itself is not used: its OpenSSH parser (the `ssh-keys` crate) panics on an Ed25519 key
/// whose private part is not 64 bytes, so OpenSSH text is only handed to it once [`openssh_key_is_sound`] has
/// checked its structure.
fn parse_secret_key(bytes: &[u8]) -> Result<SecretKey, String> {
    let secret_key = if let Ok(secret_key) = SecretKey::from_bytes(bytes) {
        secret_key
    } else if let Ok(secret_key) = SecretKey::from_der(bytes) {
        secret_key
    } else {
        let text = std::str::from_utf8(bytes).ok();
        let from_pem = || text.and_then(|text| SecretKey::from_pem(text).ok());
        let from_openssh = || {
            text.filter(|text| openssh_key_is_sound(text))
                .and_then(|text| SecretKey::from_openssh(text).ok())
        };
        match from_pem().or_else(from_openssh) {
            Some(secret_key) => secret_key,
            None if PublicKey::from_any(bytes).is_ok() => {
                return Err("this is a public key; signing needs the secret key".to_owned())
            }
            None => {
                return Err(
                    "not an Ed25519 secret key in wasmsign2's raw format, PEM, DER or unencrypted OpenSSH".to_owned(),
                )
            }
        }
    };
    // A raw or OpenSSH secret key stores its public half next to the seed; signing with a public half that the
    // seed does not make yields signatures nobody can verify. DER holds the seed alone, and decoding it derives
    // the public half (and refuses an all-zero seed).
    match SecretKey::from_der(&secret_key.to_der()) {
        Ok(derived) if derived == secret_key => Ok(secret_key),
        _ => Err("its public half does not belong to its seed".to_owned()),
    }
}

/// Whether `text` is an unencrypted `openssh-key-v1` private key that the `ssh-keys` crate parses without
/// panicking: every Ed25519 private part must be 64 bytes. Mirrors `ssh_keys::openssh::parse_private_key`.
fn openssh_key_is_sound(text: &str) -> bool {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    if !text.starts_with(BEGIN) {
        return false;
    }
    let Some(body) = text.find(END).and_then(|end| text.get(BEGIN.len()..end)) else {
        return false;
    };
    let Some(data) = base64_decode(body) else {
        return false;
    };
    data.strip_prefix(b"openssh-key-v1\0")
        .and_then(|keys| openssh_keys_are_sound(Reader::new(keys)))
        .is_some()
}

/// The part of [`openssh_key_is_sound`] after the magic: cipher, KDF, KDF options, then the keys.
fn openssh_keys_are_sound(mut reader: Reader<'_>) -> Option<()> {
    let unencrypted = reader.ssh_string()? == b"none" && reader.ssh_string()? == b"none";
    if !unencrypted || !reader.ssh_string()?.is_empty() {
        return None;
    }
    for _ in 0..reader.u32_be()? {
        reader.ssh_string()?;
        let mut private = Reader::new(reader.ssh_string()?);
        private.u32_be()?;
        private.u32_be()?;
        if private.ssh_string()? == b"ssh-ed25519" {
            private.ssh_string()?;
            if private.ssh_string()?.len() != 64 {
                return None;
            }
            std::str::from_utf8(private.ssh_string()?).ok()?;
        }
    }
    Some(())
}

/// Standard base64 with padding, ASCII whitespace ignored; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(symbols).ok()
}

/// A human reason for a wasmsign2 error, for messages only (never to classify).
fn describe(error: &WSError) -> String {
    match error {
        WSError::UnsupportedModuleType => NOT_WASM.to_owned(),
        WSError::IOError(e) if e.kind() == io::ErrorKind::UnexpectedEof => "the module is truncated".to_owned(),
        WSError::Eof => "the module is truncated".to_owned(),
        WSError::UTF8Error(_) => "a custom section's name is not UTF-8".to_owned(),
        WSError::ParseError => "the module is malformed".to_owned(),
        other => other.to_string(),
    }
}

/// A cursor over untrusted bytes that never reads past their end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// An unsigned LEB128 number read as wasmsign2's `varint::get32` does: at most 5 bytes, bits beyond 32
    /// dropped.
    fn var_u32(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let byte = self.byte()?;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// The next `len` bytes; `None` (consuming nothing) when fewer remain.
    fn take(&mut self, len: u32) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        if len > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(taken)
    }

    fn u32_be(&mut self) -> Option<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// An SSH wire-format string: a big-endian `u32` length, then the bytes.
    fn ssh_string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32_be()?;
        self.take(len)
    }
}

/// What a bounds-checked walk over a module's sections found.
struct Layout<'a> {
    /// The payload of the first section, when that is a `signature` custom section.
    signature: Option<&'a [u8]>,
    /// A `signature` section somewhere after the first section (wasmsign2 ignores it).
    misplaced_signature: bool,
    /// The index of a section whose length (or custom section name length) runs past the end of the module.
    overrun_at: Option<usize>,
    /// Whether anything follows the header.
    has_sections: bool,
}

/// Walks the sections of `module` the way wasmsign2's `Section::deserialize` reads them, without allocating;
/// `None` when `module` lacks a WebAssembly header. The walk stops where wasmsign2 would fail before allocating
/// (it reads no further either), and records a length that runs past the end, which wasmsign2 would allocate.
fn scan_module(module: &[u8]) -> Option<Layout<'_>> {
    let header = module.get(..8)?;
    if !WASM_HEADERS.iter().any(|known| known[..] == *header) {
        return None;
    }
    let mut layout = Layout {
        signature: None,
        misplaced_signature: false,
        overrun_at: None,
        has_sections: module.len() > 8,
    };
    let mut reader = Reader::new(module.get(8..)?);
    let mut index = 0;
    while let Some(id) = reader.byte() {
        if id & 0x80 != 0 {
            break;
        }
        let Some(len) = reader.var_u32() else { break };
        let Some(payload) = reader.take(len) else {
            layout.overrun_at = Some(index);
            break;
        };
        if id == 0 {
            let mut custom = Reader::new(payload);
            let Some(name_len) = custom.var_u32() else { break };
            let Some(name) = custom.take(name_len) else {
                layout.overrun_at = Some(index);
                break;
            };
            if std::str::from_utf8(name).is_err() {
                break;
            }
            if name == SIGNATURE_SECTION_NAME {
                if index == 0 {
                    layout.signature = Some(custom.rest);
                } else {
                    layout.misplaced_signature = true;
                }
            }
        }
        index += 1;
    }
    Some(layout)
}

/// How far a bounds-checked walk over signature data got.
enum Walk {
    /// The structure is complete.
    Complete,
    /// wasmsign2 fails here before allocating anything large, and reads no further.
    Stop,
    /// A length runs past the end of its container: wasmsign2 would allocate it.
    Overrun,
}

/// Whether wasmsign2 decodes `data` (a signature section's payload or a detached signature) without allocating
/// more than `data.len()` bytes for any one length field. Mirrors `SignatureData::deserialize`.
fn signature_data_is_bounded(data: &[u8]) -> bool {
    !matches!(walk_signature_data(data), Walk::Overrun)
}

fn walk_signature_data(data: &[u8]) -> Walk {
    let mut reader = Reader::new(data);
    // Specification version, content type, hash function: one byte each.
    for _ in 0..3 {
        if reader.byte().is_none_or(|byte| byte & 0x80 != 0) {
            return Walk::Stop;
        }
    }
    let Some(sets) = reader.var_u32().filter(|&sets| sets <= MAX_HASHES) else {
        return Walk::Stop;
    };
    for _ in 0..sets {
        let Some(len) = reader.var_u32() else {
            return Walk::Stop;
        };
        let Some(set) = reader.take(len) else {
            return Walk::Overrun;
        };
        match walk_signed_hashes(set) {
            Walk::Complete => {}
            other => return other,
        }
    }
    Walk::Complete
}

/// Mirrors `SignedHashes::deserialize`.
fn walk_signed_hashes(data: &[u8]) -> Walk {
    let mut reader = Reader::new(data);
    let Some(hashes) = reader.var_u32().filter(|&hashes| hashes <= MAX_HASHES) else {
        return Walk::Stop;
    };
    for _ in 0..hashes {
        // wasmsign2 allocates a fixed 32 bytes here.
        if reader.take(HASH_BYTES as u32).is_none() {
            return Walk::Stop;
        }
    }
    let Some(signatures) = reader.var_u32().filter(|&signatures| signatures <= MAX_SIGNATURES) else {
        return Walk::Stop;
    };
    for _ in 0..signatures {
        let Some(len) = reader.var_u32() else {
            return Walk::Stop;
        };
        let Some(signature) = reader.take(len) else {
            return Walk::Overrun;
        };
        // wasmsign2 drops a signature it cannot decode and goes on with the next one.
        if let Walk::Overrun = walk_signature(signature) {
            return Walk::Overrun;
        }
    }
    Walk::Complete
}

/// Mirrors `SignatureForHashes::deserialize`.
fn walk_signature(data: &[u8]) -> Walk {
    let mut reader = Reader::new(data);
    let Some(key_id_len) = reader.var_u32() else {
        return Walk::Stop;
    };
    if reader.take(key_id_len).is_none() {
        return Walk::Overrun;
    }
    if reader.byte() != Some(ED25519_ALG_ID) {
        return Walk::Stop;
    }
    let Some(signature_len) = reader.var_u32() else {
        return Walk::Stop;
    };
    if reader.take(signature_len).is_none() {
        return Walk::Overrun;
    }
    Walk::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(module (func (export "process") (param i32) (result i32) local.get 0))`, as `wat::parse_str` assembles
    /// it (kept as bytes so the tests need no assembler).
    const MODULE: [u8; 41] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type section: (i32) -> i32
        0x03, 0x02, 0x01, 0x00, // function section
        0x07, 0x0b, 0x01, 0x07, b'p', b'r', b'o', b'c', b'e', b's', b's', 0x00, 0x00, // export "process"
        0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x00, 0x0b, // code: local.get 0
    ];

    /// Another valid module: `MODULE` with a custom section `note` appended.
    fn other_module() -> Vec<u8> {
        let mut module = MODULE.to_vec();
        module.extend_from_slice(&[0x00, 0x05, 0x04, b'n', b'o', b't', b'e']);
        module
    }

    fn keys_dir(keys: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (file, bytes) in keys {
            fs::write(dir.path().join(file), bytes).expect("write key");
        }
        dir
    }

    fn trust(public: &[u8]) -> (tempfile::TempDir, TrustedKeys) {
        let dir = keys_dir(&[("only.pub", public)]);
        let keys = TrustedKeys::load(dir.path()).expect("load keys");
        (dir, keys)
    }

    fn signed(module: &[u8], pair: &KeyPair) -> Vec<u8> {
        sign(module, &pair.secret, false).expect("sign").module
    }

    /// Signs the way `wasmsign2 sign [-K pubkey]` does.
    fn cli_sign(module: &[u8], pair: &KeyPair, with_key_id: bool, detached: bool) -> (Vec<u8>, Vec<u8>) {
        let sk = SecretKey::from_bytes(&pair.secret).expect("secret key");
        let key_id = with_key_id.then(|| {
            let pk = PublicKey::from_bytes(&pair.public)
                .expect("public key")
                .attach_default_key_id();
            pk.key_id().cloned().expect("key id")
        });
        let parsed = Module::deserialize(&mut Cursor::new(module)).expect("module");
        let (out, signature) = sk
            .sign_multi(parsed, key_id.as_ref(), detached, false)
            .expect("sign_multi");
        let mut bytes = Vec::new();
        out.serialize(&mut bytes).expect("serialize");
        (bytes, signature)
    }

    fn base64_encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).expect("short").to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn openssh_public(pair: &KeyPair) -> String {
        let mut blob = Vec::new();
        ssh_string(&mut blob, b"ssh-ed25519");
        ssh_string(&mut blob, &pair.public[1..]);
        format!("ssh-ed25519 {} someone@example\n", base64_encode(&blob))
    }

    /// An unencrypted `openssh-key-v1` private key; `private` is the 64-byte Ed25519 private part.
    fn openssh_secret(pair: &KeyPair, private: &[u8]) -> String {
        let mut public_blob = Vec::new();
        ssh_string(&mut public_blob, b"ssh-ed25519");
        ssh_string(&mut public_blob, &pair.public[1..]);
        let mut private_blob = Vec::new();
        private_blob.extend_from_slice(&[1, 2, 3, 4, 1, 2, 3, 4]);
        ssh_string(&mut private_blob, b"ssh-ed25519");
        ssh_string(&mut private_blob, &pair.public[1..]);
        ssh_string(&mut private_blob, private);
        ssh_string(&mut private_blob, b"someone@example");
        private_blob.extend_from_slice(&[1, 2, 3]);
        let mut data = b"openssh-key-v1\0".to_vec();
        ssh_string(&mut data, b"none");
        ssh_string(&mut data, b"none");
        ssh_string(&mut data, b"");
        data.extend_from_slice(&1u32.to_be_bytes());
        ssh_string(&mut data, &public_blob);
        ssh_string(&mut data, &private_blob);
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            base64_encode(&data)
        )
    }

    #[test]
    fn signs_and_verifies_naming_the_signing_key() {
        let alice = generate_key_pair();
        let bob = generate_key_pair();
        assert_eq!(alice.secret.len(), 65);
        assert_eq!(alice.public.len(), 33);
        let dir = keys_dir(&[("bob.pub", &bob.public), ("alice.pub", &alice.public)]);
        let keys = TrustedKeys::load(dir.path()).expect("load");

        let module = signed(&MODULE, &bob);
        let key = keys.verify(&module, None).expect("trusted");
        assert_eq!(key.name, "bob");
        assert_eq!(key.key_id, key_id_of_public(&bob.public).expect("key id"));
        assert_eq!(
            keys.verify(&signed(&MODULE, &alice), None).expect("trusted").name,
            "alice"
        );
    }

    #[test]
    fn first_key_by_name_wins_when_several_signed() {
        let alice = generate_key_pair();
        let bob = generate_key_pair();
        let dir = keys_dir(&[("bob.pub", &bob.public), ("alice.pub", &alice.public)]);
        let keys = TrustedKeys::load(dir.path()).expect("load");
        // `sign_multi` adds a second signature to the first one (our `sign` would replace it).
        let (by_bob, _) = cli_sign(&MODULE, &bob, true, false);
        let (by_both, _) = cli_sign(&by_bob, &alice, true, false);
        assert_eq!(signature_key_ids(&by_both).expect("signed").len(), 2);
        assert_eq!(keys.verify(&by_both, None).expect("trusted").name, "alice");
    }

    #[test]
    fn unsigned_module_is_unsigned() {
        let (_dir, keys) = trust(&generate_key_pair().public);
        assert_eq!(keys.verify(&MODULE, None), Err(Untrusted::Unsigned));
        assert_eq!(keys.verify(&other_module(), None), Err(Untrusted::Unsigned));
        let header_only = &MODULE[..8];
        assert_eq!(keys.verify(header_only, None), Err(Untrusted::Unsigned));
    }

    #[test]
    fn untrusted_signer_is_unknown_key() {
        let (_dir, keys) = trust(&generate_key_pair().public);
        let stranger = generate_key_pair();
        assert_eq!(
            keys.verify(&signed(&MODULE, &stranger), None),
            Err(Untrusted::UnknownKey)
        );
        // Without a key id the signature is tried with every trusted key, and still fails.
        let (anonymous, _) = cli_sign(&MODULE, &stranger, false, false);
        assert_eq!(keys.verify(&anonymous, None), Err(Untrusted::UnknownKey));
        // Even when the module was altered too: no trusted key is involved at all.
        let mut altered = signed(&MODULE, &stranger);
        altered.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);
        assert_eq!(keys.verify(&altered, None), Err(Untrusted::UnknownKey));
    }

    #[test]
    fn tampered_module_is_bad_signature() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let module = signed(&MODULE, &pair);

        let mut appended = module.clone();
        appended.extend_from_slice(&[0x00, 0x05, 0x04, b'n', b'o', b't', b'e']);
        assert_eq!(keys.verify(&appended, None), Err(Untrusted::BadSignature));

        let mut renamed = module.clone();
        let at = renamed.windows(7).position(|w| w == b"process").expect("export name");
        renamed[at] = b'P';
        assert_eq!(keys.verify(&renamed, None), Err(Untrusted::BadSignature));

        let mut recoded = module.clone();
        let last = recoded.len() - 3;
        recoded[last] = 0x41; // `local.get 0` becomes `i32.const 0`
        assert_eq!(keys.verify(&recoded, None), Err(Untrusted::BadSignature));

        // The same for a signature without key id.
        let (anonymous, _) = cli_sign(&MODULE, &pair, false, false);
        let mut anonymous_appended = anonymous.clone();
        anonymous_appended.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);
        assert_eq!(keys.verify(&anonymous, None).expect("trusted").name, "only");
        assert_eq!(keys.verify(&anonymous_appended, None), Err(Untrusted::BadSignature));
    }

    /// What the classification in `TrustedKeys::verify` relies on, checked against wasmsign2 itself.
    #[test]
    fn verify_multi_fails_with_verification_failed_only_for_a_key_that_signed_nothing() {
        let signer = generate_key_pair();
        let stranger = generate_key_pair();
        let signer_pk = PublicKey::from_bytes(&signer.public)
            .expect("pk")
            .attach_default_key_id();
        let stranger_pk = PublicKey::from_bytes(&stranger.public)
            .expect("pk")
            .attach_default_key_id();
        let mut tampered = signed(&MODULE, &signer);
        tampered.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);

        let full = signer_pk.verify(&mut Cursor::new(&tampered), None);
        assert!(matches!(full, Err(WSError::VerificationFailed)));
        // Surprise: without delimiters verify_multi never compares the module's hash, so it passes.
        assert!(signer_pk
            .verify_multi(&mut Cursor::new(&tampered), None, |_| true)
            .is_ok());
        let other = stranger_pk.verify_multi(&mut Cursor::new(&tampered), None, |_| true);
        assert!(matches!(other, Err(WSError::VerificationFailed)));
    }

    #[test]
    fn detached_signatures_verify() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let out = sign(&MODULE, &pair.secret, true).expect("sign");
        assert_eq!(out.module, MODULE.to_vec(), "an unsigned module is returned unchanged");
        let signature = out.detached.expect("detached signature");
        assert_eq!(keys.verify(&MODULE, Some(&signature)).expect("trusted").name, "only");
        assert_eq!(keys.verify(&MODULE, None), Err(Untrusted::Unsigned));
        assert_eq!(
            keys.verify(&other_module(), Some(&signature)),
            Err(Untrusted::BadSignature)
        );
        assert_eq!(keys.verify(&MODULE, Some(b"garbage")), Err(Untrusted::BadSignature));
        assert_eq!(keys.verify(&MODULE, Some(b"")), Err(Untrusted::BadSignature));
        assert_eq!(keys.verify(b"not wasm", Some(&signature)), Err(Untrusted::BadSignature));

        let stranger = sign(&MODULE, &generate_key_pair().secret, true).expect("sign");
        let stranger_signature = stranger.detached.expect("detached signature");
        assert_eq!(
            keys.verify(&MODULE, Some(&stranger_signature)),
            Err(Untrusted::UnknownKey)
        );

        // Detaching from a signed module strips the embedded signature.
        let from_signed = sign(&signed(&MODULE, &pair), &pair.secret, true).expect("sign");
        assert_eq!(from_signed.module, MODULE.to_vec());
        let signature = from_signed.detached.expect("detached signature");
        assert!(keys.verify(&from_signed.module, Some(&signature)).is_ok());
    }

    #[test]
    fn resigning_replaces_the_signature() {
        let alice = generate_key_pair();
        let bob = generate_key_pair();
        let (_alice_dir, alice_keys) = trust(&alice.public);
        let (_bob_dir, bob_keys) = trust(&bob.public);

        let by_alice = signed(&MODULE, &alice);
        let by_bob = signed(&by_alice, &bob);
        assert_eq!(
            signature_key_ids(&by_bob),
            Some(vec![key_id_of_public(&bob.public).expect("id")])
        );
        assert_eq!(alice_keys.verify(&by_bob, None), Err(Untrusted::UnknownKey));
        assert!(bob_keys.verify(&by_bob, None).is_ok());

        // Signing twice with the same key is no error, and changes nothing.
        assert_eq!(signed(&by_bob, &bob), by_bob);
        // Neither is signing a module whose signature section is garbage.
        let mut broken = MODULE[..8].to_vec();
        broken.extend_from_slice(&[0x00, 0x0b, 0x09]);
        broken.extend_from_slice(b"signature");
        broken.extend_from_slice(&[0xff]);
        broken.extend_from_slice(&MODULE[8..]);
        assert_eq!(bob_keys.verify(&broken, None), Err(Untrusted::BadSignature));
        assert!(bob_keys.verify(&signed(&broken, &bob), None).is_ok());
    }

    #[test]
    fn loads_keys_from_a_directory() {
        let alice = generate_key_pair();
        let bob = generate_key_pair();
        let dir = keys_dir(&[
            ("bob.pub", &bob.public),
            ("alice.pub", &alice.public),
            ("README", b"not a key"),
            ("carol.sec", &bob.secret),
            (".pub", b"not a key either"),
        ]);
        fs::create_dir(dir.path().join("dave.pub")).expect("mkdir");
        let keys = TrustedKeys::load(dir.path()).expect("load");
        let names: Vec<&str> = keys.keys().iter().map(|key| key.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(keys.keys()[0].key_id, key_id_of_public(&alice.public).expect("id"));
        assert_eq!(keys.keys()[0].key_id.len(), 24);

        let single = TrustedKeys::load(&dir.path().join("bob.pub")).expect("load file");
        assert_eq!(single.keys().len(), 1);
        assert_eq!(single.keys()[0].name, "bob");
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinked_key_files() {
        let pair = generate_key_pair();
        let dir = keys_dir(&[("..data", &pair.public)]);
        std::os::unix::fs::symlink(dir.path().join("..data"), dir.path().join("ops.pub")).expect("symlink");
        let keys = TrustedKeys::load(dir.path()).expect("load");
        assert_eq!(keys.keys()[0].name, "ops");
    }

    #[test]
    fn key_loading_errors() {
        let empty = keys_dir(&[("README", b"nothing here")]);
        let err = TrustedKeys::load(empty.path()).expect_err("no keys");
        assert!(
            matches!(&err, KeyError::NoKeys(path) if path == empty.path()),
            "{err:?}"
        );
        assert!(err.to_string().contains(&empty.path().display().to_string()));

        let invalid = keys_dir(&[("bad.pub", b"ssh-ed25519 nope")]);
        let err = TrustedKeys::load(invalid.path()).expect_err("invalid");
        assert!(
            matches!(&err, KeyError::Invalid { path, .. } if path.ends_with("bad.pub")),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("invalid trusted key "), "{err}");
        assert!(err.to_string().contains("bad.pub"), "{err}");

        let pair = generate_key_pair();
        let secret = keys_dir(&[("oops.pub", &pair.secret)]);
        let err = TrustedKeys::load(secret.path()).expect_err("secret key");
        assert!(err.to_string().contains("secret key"), "{err}");

        let pem = PublicKey::from_bytes(&pair.public).expect("pk").to_pem();
        let twice = keys_dir(&[("a.pub", &pair.public), ("b.pub", pem.as_bytes())]);
        let err = TrustedKeys::load(twice.path()).expect_err("duplicate");
        assert!(
            matches!(&err, KeyError::Duplicate { path } if path.ends_with("b.pub")),
            "{err:?}"
        );

        let missing = empty.path().join("missing");
        let err = TrustedKeys::load(&missing).expect_err("missing");
        assert!(matches!(&err, KeyError::Io { path, .. } if path == &missing), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn accepts_every_public_key_format() {
        let pair = generate_key_pair();
        let pk = PublicKey::from_bytes(&pair.public).expect("pk");
        let id = key_id_of_public(&pair.public).expect("raw");
        assert_eq!(
            id,
            hex::encode(pk.clone().attach_default_key_id().key_id().expect("id"))
        );
        assert_eq!(key_id_of_public(pk.to_pem().as_bytes()).expect("pem"), id);
        assert_eq!(key_id_of_public(&pk.to_der()).expect("der"), id);
        assert_eq!(key_id_of_public(openssh_public(&pair).as_bytes()).expect("openssh"), id);

        let dir = keys_dir(&[("pem.pub", pk.to_pem().as_bytes())]);
        let keys = TrustedKeys::load(dir.path()).expect("load pem");
        assert_eq!(keys.verify(&signed(&MODULE, &pair), None).expect("trusted").name, "pem");
        let dir = keys_dir(&[("ssh.pub", openssh_public(&pair).as_bytes())]);
        let keys = TrustedKeys::load(dir.path()).expect("load openssh");
        assert_eq!(keys.verify(&signed(&MODULE, &pair), None).expect("trusted").name, "ssh");

        let err = key_id_of_public(b"junk").expect_err("junk");
        assert!(matches!(&err, KeyError::Invalid { path, .. } if path.as_os_str().is_empty()));
        assert!(err.to_string().starts_with("invalid public key: "), "{err}");
    }

    #[test]
    fn signs_with_every_secret_key_format() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let sk = SecretKey::from_bytes(&pair.secret).expect("sk");
        let openssh = openssh_secret(&pair, &pair.secret[1..]);
        for secret in [sk.to_pem().into_bytes(), sk.to_der(), openssh.into_bytes()] {
            let out = sign(&MODULE, &secret, false).expect("sign");
            assert_eq!(keys.verify(&out.module, None).expect("trusted").name, "only");
            assert_eq!(
                signature_key_ids(&out.module),
                Some(vec![keys.keys()[0].key_id.clone()])
            );
        }
    }

    #[test]
    fn signing_errors() {
        let pair = generate_key_pair();
        for bad_key in [
            &b""[..],
            &b"junk"[..],
            pair.public.as_slice(),
            &[0x81; 65][..],
            &[0xff; 300][..],
        ] {
            let err = sign(&MODULE, bad_key, false).expect_err("bad key");
            assert!(matches!(err, SignError::InvalidKey(_)), "{err:?}");
        }
        let err = sign(&MODULE, &pair.public, false).expect_err("public key");
        assert!(err.to_string().contains("public key"), "{err}");

        // A raw secret key whose public half is someone else's.
        let mut mismatched = pair.secret.clone();
        mismatched[33..].copy_from_slice(&generate_key_pair().public[1..]);
        assert!(matches!(
            sign(&MODULE, &mismatched, false),
            Err(SignError::InvalidKey(_))
        ));

        // `ssh-keys` would panic on a 63-byte Ed25519 private part.
        let short = openssh_secret(&pair, &pair.secret[1..64]);
        assert!(matches!(
            sign(&MODULE, short.as_bytes(), false),
            Err(SignError::InvalidKey(_))
        ));
        let tricky = "-----BEGIN OPENSSH PRIVATE KEY-----END OPENSSH PRIVATE KEY-----";
        assert!(matches!(
            sign(&MODULE, tricky.as_bytes(), false),
            Err(SignError::InvalidKey(_))
        ));

        let oversized = [&MODULE[..8], &[0x01, 0xff, 0xff, 0xff, 0xff, 0x0f][..]].concat();
        for bad_module in [&b""[..], &b"not wasm at all"[..], &MODULE[..19], &oversized] {
            let err = sign(bad_module, &pair.secret, false).expect_err("bad module");
            assert!(matches!(err, SignError::InvalidModule(_)), "{err:?}");
        }
    }

    #[test]
    fn cli_style_signatures_verify_and_ours_verify_the_cli_way() {
        let pair = generate_key_pair();
        let dir = tempfile::tempdir().expect("dir");
        // `wasmsign2 keygen` writes both halves with `to_file`.
        let sk_file = dir.path().join("secret.key");
        let pk_file = dir.path().join("signer.pub");
        SecretKey::from_bytes(&pair.secret)
            .expect("sk")
            .to_file(&sk_file)
            .expect("write sk");
        PublicKey::from_bytes(&pair.public)
            .expect("pk")
            .to_file(&pk_file)
            .expect("write pk");
        let keys = TrustedKeys::load(&pk_file).expect("load");
        assert_eq!(fs::read(&sk_file).expect("read"), pair.secret);

        for with_key_id in [true, false] {
            let (embedded, _) = cli_sign(&MODULE, &pair, with_key_id, false);
            assert_eq!(keys.verify(&embedded, None).expect("trusted").name, "signer");
            let (unchanged, detached) = cli_sign(&MODULE, &pair, with_key_id, true);
            assert_eq!(
                keys.verify(&unchanged, Some(&detached)).expect("trusted").name,
                "signer"
            );
        }

        // `wasmsign2 verify -K`: from_file, attach_default_key_id, verify.
        let cli_pk = PublicKey::from_file(&pk_file).expect("pk").attach_default_key_id();
        let embedded = signed(&MODULE, &pair);
        cli_pk
            .verify(&mut Cursor::new(&embedded), None)
            .expect("cli verifies embedded");
        let out = sign(&MODULE, &pair.secret, true).expect("sign");
        let detached = out.detached.expect("detached");
        cli_pk
            .verify(&mut Cursor::new(&out.module), Some(&detached))
            .expect("cli verifies detached");
        // `wasmsign2 detach` of our embedded signature gives a detached one we accept.
        let parsed = Module::deserialize(&mut Cursor::new(&embedded)).expect("module");
        let (bare, detached) = parsed.detach_signature().expect("detach");
        let mut bare_bytes = Vec::new();
        bare.serialize(&mut bare_bytes).expect("serialize");
        assert_eq!(bare_bytes, MODULE.to_vec());
        assert!(keys.verify(&bare_bytes, Some(&detached)).is_ok());
    }

    #[test]
    fn pins() {
        let digest = hex::encode(Sha256::digest(MODULE));
        assert_eq!(check_pin(&MODULE, None), Ok(()));
        assert_eq!(check_pin(&MODULE, Some(&digest)), Ok(()));
        assert_eq!(check_pin(&MODULE, Some(&digest.to_uppercase())), Ok(()));
        let other = hex::encode(Sha256::digest(b"other"));
        let err = check_pin(&MODULE, Some(&other.to_uppercase())).expect_err("mismatch");
        assert_eq!(
            err,
            Untrusted::PinMismatch {
                expected: other.clone(),
                actual: digest.clone()
            }
        );
        assert_eq!(err.reason(), "pin_mismatch");
        assert_eq!(
            err.to_string(),
            format!("pinned: the manifest pins sha256 {other}, the module is {digest}")
        );
        let odd = check_pin(&MODULE, Some("x\ny")).expect_err("odd");
        assert!(!odd.to_string().contains('\n'));
    }

    #[test]
    fn lists_signature_key_ids() {
        let pair = generate_key_pair();
        let id = key_id_of_public(&pair.public).expect("id");
        assert_eq!(signature_key_ids(&signed(&MODULE, &pair)), Some(vec![id]));
        assert_eq!(signature_key_ids(&MODULE), None);
        assert_eq!(signature_key_ids(b"garbage"), None);
        let (anonymous, _) = cli_sign(&MODULE, &pair, false, false);
        assert_eq!(signature_key_ids(&anonymous), Some(vec![]));
        let mut broken = signed(&MODULE, &pair);
        broken[20] ^= 0xff; // inside the signature data
        let _ = signature_key_ids(&broken);
    }

    #[test]
    fn verdict_names_and_messages() {
        let cases = [
            (
                Untrusted::Unsigned,
                "unsigned",
                "unsigned: the module carries no signature",
            ),
            (
                Untrusted::UnknownKey,
                "unknown_key",
                "unknown key: no trusted key signed this module",
            ),
            (
                Untrusted::BadSignature,
                "bad_signature",
                "bad signature: the module's contents do not match its signature",
            ),
        ];
        for (verdict, reason, message) in cases {
            assert_eq!(verdict.reason(), reason);
            assert_eq!(verdict.to_string(), message);
        }
        let pair = generate_key_pair();
        assert!(!format!("{pair:?}").contains(&hex::encode(&pair.secret)));
    }

    #[test]
    fn misplaced_signature_section_is_bad_signature() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let signed_module = signed(&MODULE, &pair);
        let signature_section = &signed_module[8..signed_module.len() - (MODULE.len() - 8)];
        let mut moved = MODULE.to_vec();
        moved.extend_from_slice(signature_section);
        assert_eq!(keys.verify(&moved, None), Err(Untrusted::BadSignature));
        // A section put before the signature section pushes it out of place as well.
        let mut prefixed = MODULE[..8].to_vec();
        prefixed.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);
        prefixed.extend_from_slice(&signed_module[8..]);
        assert_eq!(keys.verify(&prefixed, None), Err(Untrusted::BadSignature));
    }

    #[test]
    fn oversized_lengths_are_refused_before_wasmsign2_allocates_them() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];

        // A first section claiming 4 GiB.
        let mut first = MODULE[..8].to_vec();
        first.push(0x01);
        first.extend_from_slice(&huge);
        assert_eq!(keys.verify(&first, None), Err(Untrusted::BadSignature));
        assert_eq!(signature_key_ids(&first), None);

        // An unsigned module whose second section claims 4 GiB: plainly unsigned.
        let mut later = MODULE.to_vec();
        later.push(0x01);
        later.extend_from_slice(&huge);
        assert_eq!(keys.verify(&later, None), Err(Untrusted::Unsigned));
        assert_eq!(
            keys.verify(&later, Some(b"\x01\x01\x01\x00")),
            Err(Untrusted::BadSignature)
        );

        // A signed module with such a section appended.
        let mut signed_later = signed(&MODULE, &pair);
        signed_later.push(0x00);
        signed_later.extend_from_slice(&huge);
        assert_eq!(keys.verify(&signed_later, None), Err(Untrusted::BadSignature));

        // Signature data whose inner lengths claim 4 GiB: a hash set, a signature, a key id.
        let mut key_id_overrun = vec![0x01, 0x01, 0x01, 0x01, 0x0a, 0x00, 0x01, 0x07];
        key_id_overrun.extend_from_slice(&huge);
        key_id_overrun.extend_from_slice(&[0x01, 0x00]);
        for data in [
            [&[0x01, 0x01, 0x01, 0x01][..], &huge].concat(),
            [&[0x01, 0x01, 0x01, 0x01, 0x07, 0x00, 0x01][..], &huge, &[0x00]].concat(),
            key_id_overrun,
        ] {
            assert!(!signature_data_is_bounded(&data), "{data:?}");
            assert_eq!(keys.verify(&MODULE, Some(&data)), Err(Untrusted::BadSignature));
            let mut embedded = MODULE[..8].to_vec();
            let payload = [&[0x09][..], SIGNATURE_SECTION_NAME, &data].concat();
            embedded.push(0x00);
            embedded.push(u8::try_from(payload.len()).expect("small"));
            embedded.extend_from_slice(&payload);
            embedded.extend_from_slice(&MODULE[8..]);
            assert_eq!(keys.verify(&embedded, None), Err(Untrusted::BadSignature));
            assert_eq!(signature_key_ids(&embedded), None);
        }
        // Real signature data is bounded.
        let out = sign(&MODULE, &pair.secret, true).expect("sign");
        assert!(signature_data_is_bounded(&out.detached.expect("detached")));
    }

    #[test]
    fn garbage_never_panics_and_never_verifies() {
        let pair = generate_key_pair();
        let (_dir, keys) = trust(&pair.public);
        let module = signed(&MODULE, &pair);
        let detached = sign(&MODULE, &pair.secret, true)
            .expect("sign")
            .detached
            .expect("detached");

        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\0asm".to_vec(),
            vec![0xff; 64],
            (0..=255).collect(),
            [&MODULE[..8], &[0x00; 40][..]].concat(),
            [&MODULE[..8], &[0x00, 0x80][..]].concat(),
            [&MODULE[..8], &[0x80][..]].concat(),
            [&MODULE[..8], &[0x00, 0x03, 0x02, 0xc3, 0x28][..]].concat(),
        ];
        for len in 0..module.len() {
            inputs.push(module[..len].to_vec());
        }
        for at in 0..module.len() {
            for bit in 0..8 {
                let mut flipped = module.clone();
                flipped[at] ^= 1 << bit;
                inputs.push(flipped);
            }
        }
        for input in &inputs {
            assert!(keys.verify(input, None).is_err(), "{input:?}");
            let _ = keys.verify(input, Some(input));
            let _ = keys.verify(&MODULE, Some(input));
            let _ = signature_key_ids(input);
            let _ = sign(input, &pair.secret, false);
            let _ = sign(&MODULE, input, false);
            let _ = key_id_of_public(input);
        }
        for at in 0..detached.len() {
            for bit in 0..8 {
                let mut flipped = detached.clone();
                flipped[at] ^= 1 << bit;
                assert!(keys.verify(&MODULE, Some(&flipped)).is_err(), "{at} {bit}");
            }
        }
        assert!(keys.verify(&module, None).is_ok());
    }

    #[test]
    fn base64_decoding() {
        for bytes in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff, 0x00, 0xfe],
        ] {
            let encoded = base64_encode(bytes);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(bytes), "{encoded}");
        }
        assert_eq!(base64_decode("Zm9v\nYmFy\r\n").as_deref(), Some(&b"foobar"[..]));
        for bad in ["Zm9", "Z===", "Zg==Zm9v", "Zm9v!", "Z=g="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
