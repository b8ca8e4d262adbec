//! Named bearer tokens: who may read, publish and administer which plugins.
//!
//! Every person or pipeline holds its own token. A token has a name, a
//! [`Role`] and, optionally, the plugin names it may touch. The service
//! never stores a token itself, only its SHA-256, in a token file that
//! operators edit; the file is re-read when it changes (see [`Tokens`]), so
//! a token is revoked by deleting its line, without a restart.
//!
//! # The token file
//!
//! ```text
//! # Lines: name, role, token hash, and optionally plugin-name patterns (comma-separated).
//! # Blank lines and lines starting with # are ignored.
//! ci-images   publisher  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8  image-*,thumb
//! alice       admin      sha256:<64 lowercase hex digits>
//! dashboard   reader     sha256:<64 lowercase hex digits>
//! ```
//!
//! Fields are separated by any run of ASCII whitespace; a line's leading
//! whitespace is ignored, so an indented `#` line is a comment too.
//!
//! - **name**: 1 to 64 characters of `A-Z a-z 0-9 _ . -`, unique in the
//!   file. `admin` is taken when the service has an `--admin-token`.
//! - **role**: `reader`, `publisher` or `admin` (each may do what the ones
//!   before it may).
//! - **hash**: `sha256:` and the 64 lowercase hex digits of the SHA-256 of
//!   the token's UTF-8 bytes, as [`hash_token`] writes it; unique in the file
//!   (two names cannot share one token).
//! - **patterns** (optional): comma-separated plugin-name patterns, each 1
//!   to 128 characters of `a-z 0-9 _ -` and `*`, where `*` matches any run of
//!   characters (also none) and a pattern must match the whole plugin name:
//!   `image-*` matches `image-x` but not `images`. Without patterns the token
//!   covers every plugin. Patterns limit every role, `admin` too.
//!
//! Each problem is reported with the file's path and the 1-based line
//! number ([`TokenFileError::Invalid`]). The values of malformed fields are
//! not repeated in messages, as a field in the wrong column may be a token.
//!
//! New tokens come from [`generate_token`]; [`token_line`] writes the line to
//! add and [`check_entry`] checks a would-be entry with the parser's rules.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// What a token may do. Each role may do everything the lesser ones may:
/// `Reader < Publisher < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May list and run plugins.
    Reader,
    /// May also publish and replace plugins.
    Publisher,
    /// May do everything, including removing plugins.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    /// Parses `reader`, `publisher` or `admin` (lowercase only).
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "reader" => Ok(Role::Reader),
            "publisher" => Ok(Role::Publisher),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role `{s}`: expected reader, publisher or admin")),
        }
    }
}

impl fmt::Display for Role {
    /// Writes the lowercase name (`reader`, ...); honours width and alignment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who holds a token: its name, role and the plugin-name patterns it is
/// limited to (empty: every plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The entry's name in the token file (`admin` for the `--admin-token`).
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Plugin-name patterns (`*` matches any run of characters); empty means every plugin.
    pub patterns: Vec<String>,
}

impl Identity {
    /// Whether this token may touch `plugin`: no patterns, or one matches the whole name.
    pub fn covers(&self, plugin: &str) -> bool {
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|p| glob_match(p.as_bytes(), plugin.as_bytes()))
    }

    /// Whether role >= `role` and covers(plugin).
    pub fn may(&self, role: Role, plugin: &str) -> bool {
        self.role >= role && self.covers(plugin)
    }
}

/// Whether `pattern` (where `*` matches any run of bytes) matches all of `name`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last `*` seen and the position in `name` it is currently assumed to end at.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last `*` swallow one more byte and try again from there.
            star = Some((sp, sn + 1));
            p = sp + 1;
            n = sn + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No entry holds this token (or it is empty).
    #[error("unknown token")]
    UnknownToken,
    /// The token file cannot be read or parsed, so its tokens are refused
    /// until it is fixed; holds the reason (a [`TokenFileError`]'s message).
    #[error("the token file cannot be used: {0}")]
    TokenFile(String),
}

/// What is wrong with one line of the token file (or with a would-be entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not 3 or 4 fields; holds the number found.
    FieldCount(usize),
    /// The name is not 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    BadName,
    /// The role is not `reader`, `publisher` or `admin`.
    UnknownRole,
    /// The hash is not `sha256:` and 64 lowercase hex digits.
    BadHash,
    /// A pattern is empty, longer than 128 characters, or holds a character
    /// other than `a-z 0-9 _ -` and `*`; holds its 1-based position in the list.
    BadPattern(usize),
    /// The name is already used, on the given earlier line, or (`None`) by
    /// the `--admin-token`.
    DuplicateName {
        /// The name used twice.
        name: String,
        /// The earlier line with this name; `None` for the `--admin-token`.
        first_line: Option<usize>,
    },
    /// The hash (so the token) is already used by another entry.
    DuplicateHash {
        /// The other entry's name.
        other: String,
        /// The other entry's line; `None` for the `--admin-token`.
        first_line: Option<usize>,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::FieldCount(n) => {
                write!(
                    f,
                    "expected 3 or 4 fields (name, role, hash, optional patterns), found {n}"
                )
            }
            LineError::BadName => f.write_str("bad name: expected 1 to 64 characters of A-Z a-z 0-9 _ . -"),
            LineError::UnknownRole => f.write_str("unknown role: expected reader, publisher or admin"),
            LineError::BadHash => f.write_str("bad hash: expected `sha256:` and 64 lowercase hex digits"),
            LineError::BadPattern(i) => write!(
                f,
                "bad plugin-name pattern #{i}: expected 1 to 128 characters of a-z 0-9 _ - and *, separated by commas"
            ),
            LineError::DuplicateName {
                name,
                first_line: Some(l),
            } => {
                write!(f, "duplicate name `{name}`: already used on line {l}")
            }
            LineError::DuplicateName { name, first_line: None } => {
                write!(f, "duplicate name `{name}`: the --admin-token is named `{name}`")
            }
            LineError::DuplicateHash {
                other,
                first_line: Some(l),
            } => {
                write!(f, "duplicate hash: the same token as `{other}` on line {l}")
            }
            LineError::DuplicateHash { first_line: None, .. } => {
                f.write_str("duplicate hash: the same token as the --admin-token")
            }
        }
    }
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read (missing, unreadable, not UTF-8).
    #[error("cannot read the token file {}: {source}", path.display())]
    Io {
        /// The token file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line is invalid.
    #[error("token file {}, line {line}: {reason}", path.display())]
    Invalid {
        /// The token file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: LineError,
    },
}

/// One accepted token: who holds it and its SHA-256.
#[derive(Debug, Clone)]
struct Entry {
    identity: Identity,
    hash: [u8; 32],
}

/// The name of the `--admin-token`'s identity.
const ADMIN_NAME: &str = "admin";
const HASH_PREFIX: &str = "sha256:";
const MAX_PATTERN_LEN: usize = 128;

fn check_name(name: &str) -> Result<(), LineError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(LineError::BadName)
    }
}

fn check_pattern(pattern: &str) -> bool {
    (1..=MAX_PATTERN_LEN).contains(&pattern.len())
        && pattern
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*'))
}

fn check_patterns(patterns: &[String]) -> Result<(), LineError> {
    match patterns.iter().position(|p| !check_pattern(p)) {
        Some(i) => Err(LineError::BadPattern(i + 1)),
        None => Ok(()),
    }
}

/// Parses `sha256:<64 lowercase hex>`.
fn parse_hash(field: &str) -> Result<[u8; 32], LineError> {
    let hex_part = field.strip_prefix(HASH_PREFIX).ok_or(LineError::BadHash)?;
    if hex_part.len() != 64 || !hex_part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(LineError::BadHash);
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut hash).map_err(|_| LineError::BadHash)?;
    Ok(hash)
}

/// Parses one non-comment line's fields.
fn parse_line(line: &str) -> Result<Entry, LineError> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    if !(3..=4).contains(&fields.len()) {
        return Err(LineError::FieldCount(fields.len()));
    }
    let name = fields[0];
    check_name(name)?;
    let role: Role = fields[1].parse().map_err(|_| LineError::UnknownRole)?;
    let hash = parse_hash(fields[2])?;
    let patterns: Vec<String> = match fields.get(3) {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    check_patterns(&patterns)?;
    Ok(Entry {
        identity: Identity {
            name: name.to_owned(),
            role,
            patterns,
        },
        hash,
    })
}

/// Parses a whole token file. `admin` is the `--admin-token`'s entry, whose
/// name and hash no line may repeat.
fn parse_file(text: &str, path: &Path, admin: Option<&Entry>) -> Result<Vec<Entry>, TokenFileError> {
    let mut entries: Vec<(usize, Entry)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let invalid = |reason| TokenFileError::Invalid {
            path: path.to_owned(),
            line: number,
            reason,
        };
        let entry = parse_line(trimmed).map_err(invalid)?;
        let earlier = admin
            .map(|a| (None, a))
            .into_iter()
            .chain(entries.iter().map(|(l, e)| (Some(*l), e)));
        for (first_line, other) in earlier {
            if other.identity.name == entry.identity.name {
                return Err(invalid(LineError::DuplicateName {
                    name: entry.identity.name,
                    first_line,
                }));
            }
            if other.hash == entry.hash {
                return Err(invalid(LineError::DuplicateHash {
                    other: other.identity.name.clone(),
                    first_line,
                }));
            }
        }
        entries.push((number, entry));
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// What identifies one version of the token file: if any of these changed,
/// the file may have, and it is re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> io::Result<Stamp> {
        let m = fs::metadata(path)?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Reads the file and the stamp of what was read. Stats before and after
/// reading and retries a few times if they differ (the file was being
/// written); if it never settles, the stamp is `None` so the next lookup
/// reads it again.
fn read_file(path: &Path) -> Result<(Option<Stamp>, String), TokenFileError> {
    let io_err = |source| TokenFileError::Io {
        path: path.to_owned(),
        source,
    };
    for _ in 0..3 {
        let before = Stamp::of(path).map_err(io_err)?;
        let text = fs::read_to_string(path).map_err(io_err)?;
        let after = Stamp::of(path).map_err(io_err)?;
        if before == after {
            return Ok((Some(before), text));
        }
    }
    // A file still being written may hold half an entry that parses (a
    // line cut after its hash reads as an unscoped token): use none of it.
    Err(io_err(std::io::Error::other(
        "it kept changing while it was read; replace it in one rename",
    )))
}

/// The token file as last read.
struct Loaded {
    /// The version read; `None` forces a re-read at the next lookup (the
    /// file could not be read, or was changing while it was).
    stamp: Option<Stamp>,
    /// Its entries, or why it cannot be used.
    entries: Result<Arc<[Entry]>, String>,
}

/// The tokens a service accepts: the token file's (re-read when it changed) and the single `--admin-token`, which
/// is an admin token named `admin` with no patterns (a file entry named `admin` next to it is a duplicate-name
/// error).
///
/// Each [`authenticate`](Tokens::authenticate) first stats the file; if its
/// device, inode, length, mtime or ctime (with nanoseconds) changed since it
/// was read, it is read again. This sees an editor's atomic rename (a new
/// inode) and any rewrite on filesystems with nanosecond timestamps (ext4,
/// xfs, btrfs, tmpfs). Only on a filesystem with coarse timestamps can a
/// rewrite of the same length within one timestamp tick go unnoticed (until
/// the next change). Replace the file atomically (write a new file, then
/// rename it over the old one) so a half-written file is never read.
///
/// While the file cannot be read or parsed, all of its tokens are refused
/// with [`AuthError::TokenFile`] (fail closed); the `--admin-token` still
/// works. `Tokens` is `Send + Sync`.
pub struct Tokens {
    file: Option<PathBuf>,
    admin: Option<Entry>,
    state: Mutex<Loaded>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("file", &self.file)
            .field("admin_token", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads the file now: an invalid file is an error at start-up.
    ///
    /// An empty `admin_token` counts as none (an empty token is never accepted).
    pub fn new(file: Option<PathBuf>, admin_token: Option<&str>) -> Result<Tokens, TokenFileError> {
        let admin = admin_token.filter(|t| !t.is_empty()).map(|t| Entry {
            identity: Identity {
                name: ADMIN_NAME.to_owned(),
                role: Role::Admin,
                patterns: Vec::new(),
            },
            hash: digest(t),
        });
        let loaded = match &file {
            Some(path) => {
                let (stamp, text) = read_file(path)?;
                let entries = parse_file(&text, path, admin.as_ref())?;
                Loaded {
                    stamp,
                    entries: Ok(entries.into()),
                }
            }
            None => Loaded {
                stamp: None,
                entries: Ok(Arc::from(Vec::new())),
            },
        };
        Ok(Tokens {
            file,
            admin,
            state: Mutex::new(loaded),
        })
    }

    /// Whether any token can exist (a file or an admin token is configured). With none, changes are disabled.
    pub fn configured(&self) -> bool {
        self.file.is_some() || self.admin.is_some()
    }

    /// The identity holding `token`. Before looking up, if the file's metadata (len, mtime, ctime, inode) changed since
    /// it was read, re-reads it. If the file now cannot be read or parsed, fails closed: every token from the file is
    /// refused with [`AuthError::TokenFile`] until the file is fixed (the `--admin-token` stays valid, since it does
    /// not come from the file); a later good file is picked up.
    ///
    /// The token is hashed once and compared with every entry's hash in constant time, without an early exit, so
    /// timing reveals nothing about which entry matched or how much of a hash did. An empty token is refused.
    pub fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::UnknownToken);
        }
        let file_entries = match &self.file {
            Some(path) => self.current(path),
            None => Ok(Arc::from(Vec::new())),
        };
        let hash = digest(token);
        let empty: &[Entry] = &[];
        let from_file: &[Entry] = file_entries.as_deref().unwrap_or(empty);
        // Index of the matching entry: 0 for none, 1 for the admin token, 2.. for the file's.
        let mut found = 0u64;
        let candidates = self.admin.iter().map(|e| (1u64, e)).chain((2u64..).zip(from_file));
        for (index, entry) in candidates {
            found = u64::conditional_select(&found, &index, entry.hash.ct_eq(&hash));
        }
        match (found, &self.admin) {
            (1, Some(admin)) => Ok(admin.identity.clone()),
            (0, _) => match file_entries {
                Err(reason) => Err(AuthError::TokenFile(reason)),
                Ok(_) => Err(AuthError::UnknownToken),
            },
            (i, _) => Ok(from_file[(i - 2) as usize].identity.clone()),
        }
    }

    /// The file's entries, re-read if it changed since last read.
    fn current(&self, path: &Path) -> Result<Arc<[Entry]>, String> {
        let lock = || self.state.lock().unwrap_or_else(|p| p.into_inner());
        match Stamp::of(path) {
            Ok(stamp) => {
                let state = lock();
                if state.stamp == Some(stamp) {
                    return state.entries.clone();
                }
            }
            Err(source) => {
                // Gone or unreadable: no need to try reading it.
                let reason = TokenFileError::Io {
                    path: path.to_owned(),
                    source,
                }
                .to_string();
                let mut state = lock();
                *state = Loaded {
                    stamp: None,
                    entries: Err(reason.clone()),
                };
                return Err(reason);
            }
        }
        // Read and parse without holding the lock; concurrent lookups may do the same, which is harmless.
        let loaded = match read_file(path) {
            Ok((stamp, text)) => Loaded {
                stamp,
                entries: parse_file(&text, path, self.admin.as_ref())
                    .map(Arc::from)
                    .map_err(|e| e.to_string()),
            },
            Err(e) => Loaded {
                stamp: None,
                entries: Err(e.to_string()),
            },
        };
        let entries = loaded.entries.clone();
        *lock() = loaded;
        entries
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `sha256:<hex>` of a token.
pub fn hash_token(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(digest(token)))
}

/// A new random token: `wp_` followed by 43 characters of unpadded base64url (`A-Z a-z 0-9 - _`, RFC 4648 §5)
/// encoding 32 bytes from the operating system's random source.
///
/// # Panics
///
/// If the operating system's random source fails (no safe token can be made then).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("cannot get random bytes for a token: {e}");
    }
    format!("wp_{}", base64url(&bytes))
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The file line for an entry, aligned like the example: `name role hash [patterns]`. Round-trips through the parser.
///
/// The line has no trailing newline. It parses back only if the entry is valid (see [`check_entry`]).
pub fn token_line(name: &str, role: Role, hash: &str, patterns: &[String]) -> String {
    let mut line = format!("{name:<11} {role:<10} {hash}");
    if !patterns.is_empty() {
        line.push_str("  ");
        line.push_str(&patterns.join(","));
    }
    line
}

/// Checks a would-be entry before it is written (name, patterns), with the same rules as the parser.
///
/// Duplicates are not checked here: the parser finds them when the file is read.
pub fn check_entry(name: &str, patterns: &[String]) -> Result<(), String> {
    check_name(name)
        .and_then(|()| check_patterns(patterns))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ident(role: Role, patterns: &[&str]) -> Identity {
        Identity {
            name: "t".into(),
            role,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn pats(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    fn parse(text: &str) -> Result<Vec<Entry>, TokenFileError> {
        parse_file(text, Path::new("tokens.txt"), None)
    }

    /// The line and reason of a parse failure.
    fn parse_err(text: &str) -> (usize, LineError) {
        match parse(text) {
            Err(TokenFileError::Invalid { path, line, reason }) => {
                assert_eq!(path, Path::new("tokens.txt"));
                (line, reason)
            }
            Err(e) => panic!("unexpected error {e:?}"),
            Ok(_) => panic!("parsed: {text:?}"),
        }
    }

    fn write(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(path, text).unwrap();
    }

    #[test]
    fn parses_a_good_file() {
        let text = format!(
            "# Lines: name, role, token hash, and optionally plugin-name patterns.\n\
             \n\
             ci-images   publisher  {}  image-*,thumb\n\
             \t  # indented comment\n\
             alice\tadmin {}   \r\n\
             \n   \n\
             dashboard   reader     {}\n",
            hash_token("ci"),
            hash_token("alice"),
            hash_token("dash"),
        );
        let entries = parse(&text).unwrap();
        let ids: Vec<&Identity> = entries.iter().map(|e| &e.identity).collect();
        assert_eq!(
            ids,
            [
                &Identity {
                    name: "ci-images".into(),
                    role: Role::Publisher,
                    patterns: pats(&["image-*", "thumb"])
                },
                &Identity {
                    name: "alice".into(),
                    role: Role::Admin,
                    patterns: vec![]
                },
                &Identity {
                    name: "dashboard".into(),
                    role: Role::Reader,
                    patterns: vec![]
                },
            ]
        );
        assert_eq!(entries[0].hash, digest("ci"));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only a comment\n\n").unwrap().is_empty());
    }

    #[test]
    fn parse_errors_name_their_line() {
        let h = hash_token("x");
        let h2 = hash_token("y");
        let cases: Vec<(String, usize, LineError)> = vec![
            ("# c\n\nalice admin\n".into(), 3, LineError::FieldCount(2)),
            (format!("alice admin {h} a b\n"), 1, LineError::FieldCount(5)),
            (format!("# c\nal/ice admin {h}\n"), 2, LineError::BadName),
            (format!("{} admin {h}\n", "a".repeat(65)), 1, LineError::BadName),
            (format!("alice root {h}\n"), 1, LineError::UnknownRole),
            ("alice Admin sha256:00\n".into(), 1, LineError::UnknownRole),
            ("alice admin sha256:00\n".into(), 1, LineError::BadHash),
            (
                format!("alice admin {}\n", h.to_uppercase().replace("SHA256", "sha256")),
                1,
                LineError::BadHash,
            ),
            (
                format!("alice admin {}\n", h.replace("sha256:", "sha1:")),
                1,
                LineError::BadHash,
            ),
            (
                format!("\nalice admin {h} image-*,Thumb\n"),
                2,
                LineError::BadPattern(2),
            ),
            (format!("alice admin {h} a,,b\n"), 1, LineError::BadPattern(2)),
            (format!("alice admin {h} a.b\n"), 1, LineError::BadPattern(1)),
            (
                format!("alice admin {h}\n# c\nalice reader {h2}\n"),
                3,
                LineError::DuplicateName {
                    name: "alice".into(),
                    first_line: Some(1),
                },
            ),
            (
                format!("alice admin {h}\nbob reader {h}\n"),
                2,
                LineError::DuplicateHash {
                    other: "alice".into(),
                    first_line: Some(1),
                },
            ),
        ];
        for (text, line, reason) in cases {
            assert_eq!(parse_err(&text), (line, reason), "{text:?}");
        }
    }

    #[test]
    fn admin_token_reserves_name_and_hash() {
        let admin = Entry {
            identity: Identity {
                name: "admin".into(),
                role: Role::Admin,
                patterns: vec![],
            },
            hash: digest("s"),
        };
        let path = Path::new("f");
        match parse_file(&format!("admin reader {}\n", hash_token("x")), path, Some(&admin)) {
            Err(TokenFileError::Invalid {
                line: 1,
                reason: LineError::DuplicateName { name, first_line: None },
                ..
            }) => {
                assert_eq!(name, "admin")
            }
            other => panic!("{other:?}"),
        }
        match parse_file(&format!("bob reader {}\n", hash_token("s")), path, Some(&admin)) {
            Err(TokenFileError::Invalid {
                line: 1,
                reason: LineError::DuplicateHash { first_line: None, .. },
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Without an admin token, `admin` is an ordinary name.
        assert_eq!(
            parse_file(&format!("admin reader {}\n", hash_token("x")), path, None)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn roles_order_and_may() {
        assert!(Role::Reader < Role::Publisher && Role::Publisher < Role::Admin);
        for role in [Role::Reader, Role::Publisher, Role::Admin] {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert_eq!(Role::Publisher.to_string(), "publisher");
        assert!("Admin".parse::<Role>().is_err());

        let reader = ident(Role::Reader, &[]);
        assert!(reader.may(Role::Reader, "x") && !reader.may(Role::Publisher, "x") && !reader.may(Role::Admin, "x"));
        let publisher = ident(Role::Publisher, &[]);
        assert!(publisher.may(Role::Reader, "x") && publisher.may(Role::Publisher, "x"));
        assert!(!publisher.may(Role::Admin, "x"));
        let admin = ident(Role::Admin, &[]);
        assert!([Role::Reader, Role::Publisher, Role::Admin]
            .iter()
            .all(|&r| admin.may(r, "anything")));
        for role in [Role::Reader, Role::Publisher, Role::Admin] {
            let limited = ident(role, &["image-*"]);
            assert!(limited.may(Role::Reader, "image-a"));
            assert!(!limited.may(Role::Reader, "other"), "{role}");
            assert!(!limited.may(role, "other"));
        }
    }

    #[test]
    fn patterns_match_whole_names() {
        let image = ident(Role::Reader, &["image-*"]);
        assert!(image.covers("image-x") && image.covers("image-") && image.covers("image-a-b"));
        assert!(!image.covers("images") && !image.covers("image") && !image.covers("x-image-x"));
        assert!(ident(Role::Reader, &["*"]).covers("anything") && ident(Role::Reader, &["*"]).covers(""));
        let abc = ident(Role::Reader, &["a*b*c"]);
        for yes in ["abc", "a-b-c", "aXbYc", "abbbc", "ab-c-bc", "acbc"] {
            assert!(abc.covers(yes), "{yes}");
        }
        for no in ["ab", "abcd", "xabc", "acb", "bc"] {
            assert!(!abc.covers(no), "{no}");
        }
        let exact = ident(Role::Reader, &["thumb", "resize"]);
        assert!(exact.covers("thumb") && exact.covers("resize"));
        assert!(!exact.covers("thumbs") && !exact.covers("thum"));
        assert!(ident(Role::Reader, &["*-x*"]).covers("a-b-x"));
        assert!(ident(Role::Reader, &["**a**"]).covers("a") && !ident(Role::Reader, &["**a**"]).covers("b"));
        assert!(ident(Role::Reader, &[]).covers("anything"));
    }

    #[test]
    fn authenticates_file_and_admin_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        write(
            &file,
            &[
                token_line("ci", Role::Publisher, &hash_token("ci-secret"), &pats(&["image-*"])),
                token_line("dash", Role::Reader, &hash_token("dash-secret"), &[]),
            ],
        );
        let tokens = Tokens::new(Some(file), Some("root-secret")).unwrap();
        assert!(tokens.configured());
        let ci = tokens.authenticate("ci-secret").unwrap();
        assert_eq!(
            ci,
            Identity {
                name: "ci".into(),
                role: Role::Publisher,
                patterns: pats(&["image-*"])
            }
        );
        assert_eq!(tokens.authenticate("dash-secret").unwrap().name, "dash");
        assert_eq!(tokens.authenticate("ci-secreT"), Err(AuthError::UnknownToken));
        assert_eq!(tokens.authenticate(""), Err(AuthError::UnknownToken));
        let admin = tokens.authenticate("root-secret").unwrap();
        assert_eq!(
            admin,
            Identity {
                name: "admin".into(),
                role: Role::Admin,
                patterns: vec![]
            }
        );

        let only_admin = Tokens::new(None, Some("root-secret")).unwrap();
        assert!(only_admin.configured());
        assert_eq!(only_admin.authenticate("root-secret").unwrap().name, "admin");
        assert_eq!(only_admin.authenticate("other"), Err(AuthError::UnknownToken));
    }

    #[test]
    fn configured_needs_a_file_or_admin_token() {
        let none = Tokens::new(None, None).unwrap();
        assert!(!none.configured());
        assert_eq!(none.authenticate("x"), Err(AuthError::UnknownToken));
        assert_eq!(none.authenticate(""), Err(AuthError::UnknownToken));
        assert!(!Tokens::new(None, Some("")).unwrap().configured());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        fs::write(&file, "").unwrap();
        assert!(Tokens::new(Some(file), None).unwrap().configured());
    }

    #[test]
    fn start_up_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        match Tokens::new(Some(missing.clone()), None) {
            Err(TokenFileError::Io { path, source }) => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        let file = dir.path().join("tokens");
        write(&file, &[token_line("admin", Role::Reader, &hash_token("x"), &[])]);
        match Tokens::new(Some(file.clone()), Some("root")) {
            Err(TokenFileError::Invalid {
                path,
                line: 1,
                reason: LineError::DuplicateName { first_line: None, .. },
            }) => {
                assert_eq!(path, file)
            }
            other => panic!("{other:?}"),
        }
        assert!(Tokens::new(Some(file), None).is_ok());
    }

    #[test]
    fn revocation_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        let alice = token_line("alice", Role::Admin, &hash_token("alice-secret"), &[]);
        let bob = token_line("bob", Role::Reader, &hash_token("bob-secret"), &[]);
        write(&file, &[alice.clone(), bob.clone()]);
        let tokens = Tokens::new(Some(file.clone()), None).unwrap();
        assert_eq!(tokens.authenticate("alice-secret").unwrap().name, "alice");
        assert_eq!(tokens.authenticate("bob-secret").unwrap().name, "bob");

        // Rewritten in place (same inode).
        write(&file, std::slice::from_ref(&bob));
        assert_eq!(tokens.authenticate("alice-secret"), Err(AuthError::UnknownToken));
        assert_eq!(tokens.authenticate("bob-secret").unwrap().name, "bob");

        // Replaced atomically by rename, with a new token of the same line length as before.
        let carol = token_line("carol", Role::Reader, &hash_token("carol-secret"), &[]);
        let tmp = dir.path().join("tokens.new");
        write(&tmp, &[carol]);
        fs::rename(&tmp, &file).unwrap();
        assert_eq!(tokens.authenticate("bob-secret"), Err(AuthError::UnknownToken));
        assert_eq!(tokens.authenticate("carol-secret").unwrap().name, "carol");
    }

    #[test]
    fn invalid_file_fails_closed_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        let bob = token_line("bob", Role::Reader, &hash_token("bob-secret"), &[]);
        write(&file, std::slice::from_ref(&bob));
        let tokens = Tokens::new(Some(file.clone()), Some("root-secret")).unwrap();
        assert_eq!(tokens.authenticate("bob-secret").unwrap().name, "bob");

        write(&file, &[bob.clone(), "broken line".into()]);
        for token in ["bob-secret", "unknown"] {
            match tokens.authenticate(token) {
                Err(AuthError::TokenFile(reason)) => assert!(!reason.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        // The admin token does not come from the file.
        assert_eq!(tokens.authenticate("root-secret").unwrap().name, "admin");

        // A file entry named `admin` next to the admin token is invalid too.
        write(
            &file,
            &[bob.clone(), token_line("admin", Role::Admin, &hash_token("a"), &[])],
        );
        assert!(matches!(
            tokens.authenticate("bob-secret"),
            Err(AuthError::TokenFile(_))
        ));

        fs::remove_file(&file).unwrap();
        assert!(matches!(
            tokens.authenticate("bob-secret"),
            Err(AuthError::TokenFile(_))
        ));
        assert_eq!(tokens.authenticate("root-secret").unwrap().name, "admin");

        write(&file, &[bob]);
        assert_eq!(tokens.authenticate("bob-secret").unwrap().name, "bob");
        assert_eq!(tokens.authenticate("unknown"), Err(AuthError::UnknownToken));
    }

    #[test]
    fn shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokens>();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        write(
            &file,
            &[token_line("bob", Role::Reader, &hash_token("bob-secret"), &[])],
        );
        let tokens = Tokens::new(Some(file), None).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(tokens.authenticate("bob-secret").unwrap().name, "bob");
                    }
                });
            }
        });
    }

    #[test]
    fn generated_tokens_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let token = generate_token();
            let body = token.strip_prefix("wp_").unwrap();
            assert_eq!(body.len(), 43);
            assert!(
                body.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token}"
            );
            assert!(seen.insert(token));
        }
    }

    #[test]
    fn base64url_known_values() {
        // RFC 4648 test vectors, unpadded, plus the url-safe characters.
        for (input, output) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
        ] {
            assert_eq!(base64url(input.as_bytes()), output);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn hash_token_format() {
        assert_eq!(
            hash_token("password"),
            "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
    }

    #[test]
    fn token_line_round_trips() {
        let entries = [
            (
                "ci-images",
                Role::Publisher,
                hash_token("a"),
                pats(&["image-*", "thumb"]),
            ),
            ("alice", Role::Admin, hash_token("b"), vec![]),
            (
                "a-very-long.name_that-exceeds_the-column",
                Role::Reader,
                hash_token("c"),
                pats(&["*"]),
            ),
        ];
        let mut text = String::new();
        for (name, role, hash, patterns) in &entries {
            check_entry(name, patterns).unwrap();
            text.push_str(&token_line(name, *role, hash, patterns));
            text.push('\n');
        }
        assert!(text.starts_with(&format!("ci-images   publisher  {}  image-*,thumb\n", hash_token("a"))));
        assert!(text.contains(&format!("\nalice       admin      {}\n", hash_token("b"))));
        let parsed = parse(&text).unwrap();
        for ((name, role, hash, patterns), entry) in entries.iter().zip(&parsed) {
            assert_eq!(
                entry.identity,
                Identity {
                    name: name.to_string(),
                    role: *role,
                    patterns: patterns.clone()
                }
            );
            assert_eq!(&format!("sha256:{}", hex::encode(entry.hash)), hash);
        }
    }

    #[test]
    fn check_entry_uses_parser_rules() {
        assert!(check_entry("ok.name_1-x", &pats(&["a*", "b"])).is_ok());
        assert!(check_entry("", &[]).is_err());
        assert!(check_entry("has space", &[]).is_err());
        assert!(check_entry(&"a".repeat(65), &[]).is_err());
        assert!(check_entry(&"a".repeat(64), &[]).is_ok());
        assert!(check_entry("ok", &pats(&["UPPER"])).is_err());
        assert!(check_entry("ok", &pats(&[""])).is_err());
        assert!(check_entry("ok", &pats(&["a,b"])).is_err());
        assert!(check_entry("ok", &pats(&[&"a".repeat(129)])).is_err());
    }
}
