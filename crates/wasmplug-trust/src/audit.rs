//! The audit trail: one JSON line per change to the plugins, appended to a
//! file that is only ever appended to.
//!
//! A line records when, who (a token's name, or `watcher` for a file
//! dropped into the plugin directory), what (the action and the plugin),
//! the active version's digest before and after, the key that signed the
//! new module, and the outcome: `ok`, or the error code a refused change
//! got, with its reason.
//!
//! A line is whole or absent, never torn: each is written with one
//! `write` and synced before the change is acknowledged; a write that
//! fails part-way is cut back off; and opening the log cuts off an
//! unterminated tail left by a crash (a process killed in the middle of a
//! `write`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The actor of a change no token made: a file written into the plugin
/// directory, seen by its watcher.
pub const WATCHER: &str = "watcher";

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A first version of a plugin, over the API.
    Upload,
    /// A new version of a plugin that had one, over the API.
    Replace,
    /// Back to an earlier version.
    Rollback,
    /// Out of service.
    Delete,
    /// A `.wasm` or `.toml` file written into the plugin directory.
    FileChanged,
    /// A plugin's `.wasm` file removed from the plugin directory.
    FileRemoved,
}

/// One line of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, in RFC 3339 (UTC, milliseconds).
    pub time: String,
    /// Who: a token's name, or [`WATCHER`].
    pub actor: String,
    /// What.
    pub action: Action,
    /// Which plugin.
    pub plugin: String,
    /// The active module's SHA-256 before the change, if there was one.
    pub digest_before: Option<String>,
    /// The active module's SHA-256 after the change, if there is one.
    pub digest_after: Option<String>,
    /// The trusted key that signed the new module, when keys are
    /// configured and the change installed a module.
    pub signed_by: Option<String>,
    /// `ok`, or the error code the change was refused with.
    pub outcome: String,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditEntry {
    /// An entry stamped now, with outcome `ok`.
    pub fn now(actor: &str, action: Action, plugin: &str) -> AuditEntry {
        AuditEntry {
            time: format_time(OffsetDateTime::now_utc()),
            actor: actor.to_owned(),
            action,
            plugin: plugin.to_owned(),
            digest_before: None,
            digest_after: None,
            signed_by: None,
            outcome: "ok".to_owned(),
            reason: None,
        }
    }

    /// The entry's time, if it parses.
    pub fn parsed_time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.time, &Rfc3339).ok()
    }
}

/// Which entries a read returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// Only those at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

impl AuditFilter {
    /// The entries of `entries` (oldest first) that pass, with the limit
    /// applied: the newest that many.
    pub fn apply(&self, entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = entries.into_iter().filter(|entry| self.matches(entry)).collect();
        if let Some(limit) = self.limit {
            let excess = entries.len().saturating_sub(limit);
            entries.drain(..excess);
        }
        entries
    }

    /// Whether `entry` passes.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.plugin.as_deref().is_none_or(|plugin| entry.plugin == plugin)
            && self
                .since
                .is_none_or(|since| entry.parsed_time().is_some_and(|time| time >= since))
    }
}

/// Parses a `since=` value: RFC 3339 (`2026-12-03T13:00:00Z`).
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|error| format!("`{text}` is not an RFC 3339 time: {error}"))
}

fn format_time(time: OffsetDateTime) -> String {
    let time = time
        .replace_nanosecond(time.millisecond() as u32 * 1_000_000)
        .unwrap_or(time);
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

/// The append-only log file.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, cutting off a torn last line
    /// a crash may have left.
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let whole = whole_lines_length(&mut file)?;
        if whole != file.metadata()?.len() {
            tracing::warn!(
                "audit log {}: cut off a torn last line ({} bytes) left by a crash",
                path.display(),
                file.metadata()?.len() - whole
            );
            file.set_len(whole)?;
            file.sync_all()?;
        }
        Ok(AuditLog {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line and syncs it to disk.
    pub fn append(&self, entry: &AuditEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = file.metadata()?.len();
        if let Err(error) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Leave no part of the line behind.
            let _ = file.set_len(before);
            return Err(error);
        }
        Ok(())
    }

    /// The entries that pass `filter`, oldest first. A line that does not
    /// parse (written by something else) is skipped.
    pub fn read(&self, filter: &AuditFilter) -> io::Result<Vec<AuditEntry>> {
        let text = {
            let _writers = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            std::fs::read(&self.path)?
        };
        let entries = text
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        Ok(filter.apply(entries))
    }
}

/// The length of the file up to and including its last newline.
fn whole_lines_length(file: &mut File) -> io::Result<u64> {
    let length = file.metadata()?.len();
    let mut end = length;
    let mut buffer = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(index) = chunk.iter().rposition(|byte| *byte == b'\n') {
            return Ok(start + index as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(plugin: &str, outcome: &str) -> AuditEntry {
        let mut entry = AuditEntry::now("alice", Action::Upload, plugin);
        entry.outcome = outcome.to_owned();
        entry.digest_after = Some("ab".repeat(32));
        entry
    }

    #[test]
    fn entries_round_trip_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        let first = entry("process", "ok");
        log.append(&first).unwrap();
        let second = entry("rev", "untrusted_module");
        log.append(&second).unwrap();
        assert_eq!(
            log.read(&AuditFilter::default()).unwrap(),
            vec![first.clone(), second.clone()]
        );
        let only_rev = AuditFilter {
            plugin: Some("rev".into()),
            ..AuditFilter::default()
        };
        assert_eq!(log.read(&only_rev).unwrap(), vec![second.clone()]);
        let newest = AuditFilter {
            limit: Some(1),
            ..AuditFilter::default()
        };
        assert_eq!(log.read(&newest).unwrap(), vec![second.clone()]);
        let future = AuditFilter {
            since: Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
            ..AuditFilter::default()
        };
        assert!(log.read(&future).unwrap().is_empty());
        let past = AuditFilter {
            since: Some(parse_time("2020-01-01T00:00:00Z").unwrap()),
            ..AuditFilter::default()
        };
        assert_eq!(log.read(&past).unwrap().len(), 2);
        // Reopening appends after what is there.
        drop(log);
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        log.append(&first).unwrap();
        assert_eq!(log.read(&AuditFilter::default()).unwrap().len(), 3);
    }

    #[test]
    fn opening_cuts_off_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let whole = serde_json::to_string(&entry("process", "ok")).unwrap() + "\n";
        // A tail longer than one read chunk, to cover the backwards scan.
        let torn = format!("{{\"time\":\"{}", "x".repeat(5000));
        std::fs::write(&path, format!("{whole}{whole}{torn}")).unwrap();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{whole}{whole}"));
        log.append(&entry("rev", "ok")).unwrap();
        let plugins: Vec<String> = log
            .read(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .map(|entry| entry.plugin)
            .collect();
        assert_eq!(plugins, ["process", "process", "rev"]);

        // A file that is nothing but a torn line becomes empty.
        std::fs::write(&path, "{\"time\"").unwrap();
        drop(log);
        AuditLog::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn times_are_rfc3339_and_comparable() {
        let entry = AuditEntry::now("watcher", Action::FileChanged, "process");
        let time = entry.parsed_time().expect("the entry's own time parses");
        assert!(entry.time.ends_with('Z'), "{}", entry.time);
        assert!((OffsetDateTime::now_utc() - time).whole_seconds().abs() < 60);
        assert!(parse_time("yesterday").is_err());
    }
}
