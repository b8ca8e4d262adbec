//! What a call returns besides its results: output bytes, log records,
//! captured stdio, fuel used.

use serde::Serialize;

use crate::Value;

/// Severity of a plugin's `log` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4 (and anything above)
    Error,
}

impl LogLevel {
    /// The level's name in lower case, as logs print it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// Maps the ABI's integer level; out-of-range values clamp.
    pub fn from_abi(level: i32) -> LogLevel {
        match level {
            i32::MIN..=0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

/// One record a plugin wrote with `log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// Its text (invalid UTF-8 replaced).
    pub message: String,
}

/// Everything a successful call produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallOutcome {
    /// The function's results (empty for bytes-ABI calls, whose status was 0).
    pub results: Vec<Value>,
    /// Bytes written with `output_write`.
    pub output: Vec<u8>,
    /// Records written with `log`.
    pub logs: Vec<LogRecord>,
    /// What the plugin wrote to WASI stdout.
    pub stdout: Vec<u8>,
    /// What the plugin wrote to WASI stderr.
    pub stderr: Vec<u8>,
    /// Fuel consumed, when the plugin has a fuel budget.
    pub fuel_consumed: Option<u64>,
}

/// How a module was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// No cache is configured; compiled.
    Disabled,
    /// Loaded from a valid cache entry.
    Hit,
    /// No entry; compiled and stored.
    Miss,
    /// An entry existed but failed its checks; compiled and replaced.
    Corrupt,
}
