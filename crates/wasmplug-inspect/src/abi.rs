//! What a plugin may import: the host's own `wasmplug` module (the bytes ABI)
//! and the WASI preview 1 functions, each with its core-wasm signature.
//!
//! The runtime links exactly these, so the checks in [`crate::check`] and the
//! linker read the same lists.

use crate::{Signature, ValType};

/// The module name plugins import the host functions from.
pub const HOST_MODULE: &str = "wasmplug";

/// The module name of WASI preview 1 imports.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// A function a host module provides, with its exact core-wasm signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFunction {
    /// The import name.
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [ValType],
    /// Result types, in order.
    pub results: &'static [ValType],
}

impl HostFunction {
    /// The function's signature as an owned [`Signature`].
    pub fn signature(&self) -> Signature {
        Signature::new(self.params, self.results)
    }

    /// Whether `signature` is exactly this function's.
    pub fn matches(&self, signature: &Signature) -> bool {
        signature.params == self.params && signature.results == self.results
    }
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

const fn function(name: &'static str, params: &'static [ValType], results: &'static [ValType]) -> HostFunction {
    HostFunction { name, params, results }
}

/// The `wasmplug` module: the bytes ABI (`input_len`, `input_read`,
/// `output_write`) and `log`.
pub const HOST_FUNCTIONS: &[HostFunction] = &[
    function("input_len", &[], &[I32]),
    function("input_read", &[I32, I32], &[I32]),
    function("output_write", &[I32, I32], &[]),
    function("log", &[I32, I32, I32], &[]),
];

/// Every function of `wasi_snapshot_preview1`, as wasi-libc imports it:
/// pointers, sizes and handles are `i32`, 64-bit integers (`filesize`,
/// `timestamp`, `rights`) are `i64`, and every function but `proc_exit`
/// returns an `errno` as `i32`. The 45 functions of the 2020 snapshot plus
/// `sock_accept`, added to it later.
pub const WASI_PREVIEW1_FUNCTIONS: &[HostFunction] = &[
    function("args_get", &[I32, I32], &[I32]),
    function("args_sizes_get", &[I32, I32], &[I32]),
    function("environ_get", &[I32, I32], &[I32]),
    function("environ_sizes_get", &[I32, I32], &[I32]),
    function("clock_res_get", &[I32, I32], &[I32]),
    function("clock_time_get", &[I32, I64, I32], &[I32]),
    function("fd_advise", &[I32, I64, I64, I32], &[I32]),
    function("fd_allocate", &[I32, I64, I64], &[I32]),
    function("fd_close", &[I32], &[I32]),
    function("fd_datasync", &[I32], &[I32]),
    function("fd_fdstat_get", &[I32, I32], &[I32]),
    function("fd_fdstat_set_flags", &[I32, I32], &[I32]),
    function("fd_fdstat_set_rights", &[I32, I64, I64], &[I32]),
    function("fd_filestat_get", &[I32, I32], &[I32]),
    function("fd_filestat_set_size", &[I32, I64], &[I32]),
    function("fd_filestat_set_times", &[I32, I64, I64, I32], &[I32]),
    function("fd_pread", &[I32, I32, I32, I64, I32], &[I32]),
    function("fd_prestat_get", &[I32, I32], &[I32]),
    function("fd_prestat_dir_name", &[I32, I32, I32], &[I32]),
    function("fd_pwrite", &[I32, I32, I32, I64, I32], &[I32]),
    function("fd_read", &[I32, I32, I32, I32], &[I32]),
    function("fd_readdir", &[I32, I32, I32, I64, I32], &[I32]),
    function("fd_renumber", &[I32, I32], &[I32]),
    function("fd_seek", &[I32, I64, I32, I32], &[I32]),
    function("fd_sync", &[I32], &[I32]),
    function("fd_tell", &[I32, I32], &[I32]),
    function("fd_write", &[I32, I32, I32, I32], &[I32]),
    function("path_create_directory", &[I32, I32, I32], &[I32]),
    function("path_filestat_get", &[I32, I32, I32, I32, I32], &[I32]),
    function("path_filestat_set_times", &[I32, I32, I32, I32, I64, I64, I32], &[I32]),
    function("path_link", &[I32, I32, I32, I32, I32, I32, I32], &[I32]),
    function("path_open", &[I32, I32, I32, I32, I32, I64, I64, I32, I32], &[I32]),
    function("path_readlink", &[I32, I32, I32, I32, I32, I32], &[I32]),
    function("path_remove_directory", &[I32, I32, I32], &[I32]),
    function("path_rename", &[I32, I32, I32, I32, I32, I32], &[I32]),
    function("path_symlink", &[I32, I32, I32, I32, I32], &[I32]),
    function("path_unlink_file", &[I32, I32, I32], &[I32]),
    function("poll_oneoff", &[I32, I32, I32, I32], &[I32]),
    function("proc_exit", &[I32], &[]),
    function("proc_raise", &[I32], &[I32]),
    function("sched_yield", &[], &[I32]),
    function("random_get", &[I32, I32], &[I32]),
    function("sock_accept", &[I32, I32, I32], &[I32]),
    function("sock_recv", &[I32, I32, I32, I32, I32, I32], &[I32]),
    function("sock_send", &[I32, I32, I32, I32, I32], &[I32]),
    function("sock_shutdown", &[I32, I32], &[I32]),
];

/// The `wasmplug` host function with this name, if there is one.
pub fn host_function(name: &str) -> Option<&'static HostFunction> {
    HOST_FUNCTIONS.iter().find(|function| function.name == name)
}

/// The WASI preview 1 function with this name, if there is one.
pub fn wasi_function(name: &str) -> Option<&'static HostFunction> {
    WASI_PREVIEW1_FUNCTIONS.iter().find(|function| function.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasi_list_is_the_snapshot_plus_sock_accept() {
        assert_eq!(WASI_PREVIEW1_FUNCTIONS.len(), 46);
        let mut names: Vec<_> = WASI_PREVIEW1_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 46, "no name twice");
        assert_eq!(
            wasi_function("fd_write").unwrap().signature().to_string(),
            "(i32, i32, i32, i32) -> i32"
        );
        assert_eq!(
            host_function("output_write").unwrap().signature().to_string(),
            "(i32, i32) -> nil"
        );
    }
}
