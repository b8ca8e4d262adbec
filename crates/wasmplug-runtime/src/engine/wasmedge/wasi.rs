//! WASI preview 1 on WasmEdge, without WasmEdge's own WASI module: a host
//! module named `wasi_snapshot_preview1` whose every function calls
//! wasmtime-wasi's implementation of it (the one the wasmtime engine links)
//! over the caller's linear memory. The context comes from
//! [`crate::engine::wasi::context`], so grants, the default of nothing, and
//! the per-call capture of stdout and stderr are the same on both engines,
//! and nothing a plugin writes reaches the host's own streams.
//!
//! A function that wasmtime-wasi ends with an error rather than an errno
//! (`proc_exit`, a write past the stdio cap) records that error in the
//! instance's host data and traps; the call is then classified from the
//! record, never from WasmEdge's message.

use wasmedge_sdk::error::{CoreCommonError, CoreError};
use wasmedge_sdk::{CallingFrame, ImportObjectBuilder, WasmValue};
use wasmedge_sys as sys;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

use super::PAGE;
use crate::RuntimeError;

/// How many bytes one WASI call may copy between the guest and the host:
/// the budget wasmtime's store gives each WASI call (its
/// `DEFAULT_HOSTCALL_FUEL`); past it the call answers `ENOMEM`.
const HOSTCALL_FUEL: usize = 128 << 20;

/// The WASI module's name, as plugins import it.
pub(super) const MODULE: &str = wasmplug_inspect::WASI_MODULE;

/// The WASI host module's data: the context, and the error that ended the
/// last call in a WASI function, if one did.
pub(super) struct WasiData {
    ctx: wasmtime_wasi::p1::WasiP1Ctx,
    pub(super) error: Option<wasmtime::Error>,
}

impl WasiData {
    pub fn new(ctx: wasmtime_wasi::p1::WasiP1Ctx) -> WasiData {
        WasiData { ctx, error: None }
    }
}

/// A wasm value of one of WASI's two parameter types.
trait Param {
    fn from_wasm(value: Option<&WasmValue>) -> Self;
}

impl Param for i32 {
    fn from_wasm(value: Option<&WasmValue>) -> i32 {
        value.map_or(0, WasmValue::to_i32)
    }
}

impl Param for i64 {
    fn from_wasm(value: Option<&WasmValue>) -> i64 {
        value.map_or(0, WasmValue::to_i64)
    }
}

/// A WASI function's result: an errno, or nothing (`proc_exit`).
trait Return {
    fn into_wasm(self) -> Vec<WasmValue>;
}

impl Return for i32 {
    fn into_wasm(self) -> Vec<WasmValue> {
        vec![WasmValue::from_i32(self)]
    }
}

impl Return for () {
    fn into_wasm(self) -> Vec<WasmValue> {
        Vec::new()
    }
}

/// Runs one WASI function over the calling frame's memory 0.
fn with_wasi<R: Return>(
    data: &mut WasiData,
    frame: &mut CallingFrame,
    call: impl FnOnce(&mut wasmtime_wasi::p1::WasiP1Ctx, &mut wiggle::GuestMemory<'_>) -> wasmtime::Result<R>,
) -> Result<Vec<WasmValue>, CoreError> {
    let trap = || CoreError::Common(CoreCommonError::UserDefError);
    let wasi = &mut data.ctx;
    p1::WasiSnapshotPreview1::set_hostcall_fuel(wasi, HOSTCALL_FUEL);
    // A module without memory gets an empty one: pointer arguments fault.
    let mut empty: [u8; 0] = [];
    let memory = frame.memory_mut(0);
    let bytes = memory
        .as_ref()
        .and_then(|memory| memory.mut_slice::<u8>(0, memory.size() as usize * PAGE as usize))
        .unwrap_or(&mut empty[..]);
    let result = call(wasi, &mut wiggle::GuestMemory::Unshared(bytes));
    match result {
        Ok(value) => Ok(value.into_wasm()),
        Err(error) => {
            data.error = Some(error);
            Err(trap())
        }
    }
}

/// One host function per WASI function: `sync` ones are called directly,
/// `async` ones (files, streams, polling) run to completion on
/// wasmtime-wasi's runtime, as its own synchronous linker does.
macro_rules! wasi_functions {
    ($builder:ident; $( $mode:ident $name:ident ( $( $arg:ident : $ty:ident ),* ) -> $ret:ty ; )*) => {
        $(
            $builder.with_func::<wasi_functions!(@params $( $ty ),*), $ret>(
                stringify!($name),
                |data: &mut WasiData, _instance: &mut sys::Instance, frame: &mut CallingFrame, args: Vec<WasmValue>| {
                    #[allow(unused_mut, unused_variables)] // sched_yield takes nothing
                    let mut values = args.iter();
                    $( let $arg = <$ty as Param>::from_wasm(values.next()); )*
                    with_wasi::<$ret>(data, frame, |wasi, memory| {
                        wasi_functions!(@call $mode p1::$name(wasi, memory $(, $arg)*))
                    })
                },
            ).map_err(super::engine_error)?;
        )*
    };
    (@params) => { () };
    (@params $ty:ident) => { $ty };
    (@params $( $ty:ident ),+) => { ( $( $ty ),+ ) };
    (@call sync $call:expr) => { $call };
    (@call async $call:expr) => { in_tokio($call) };
}

/// The `wasi_snapshot_preview1` host module, over `data`'s WASI context.
pub(super) fn module(data: WasiData) -> Result<wasmedge_sdk::ImportObject<WasiData>, RuntimeError> {
    let mut builder = ImportObjectBuilder::new(MODULE, data).map_err(super::engine_error)?;
    wasi_functions! { builder;
        sync args_get(argv: i32, argv_buf: i32) -> i32;
        sync args_sizes_get(argc: i32, argv_buf_size: i32) -> i32;
        sync environ_get(environ: i32, environ_buf: i32) -> i32;
        sync environ_sizes_get(count: i32, buf_size: i32) -> i32;
        sync clock_res_get(id: i32, resolution: i32) -> i32;
        sync clock_time_get(id: i32, precision: i64, time: i32) -> i32;
        async fd_advise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
        sync fd_allocate(fd: i32, offset: i64, len: i64) -> i32;
        async fd_close(fd: i32) -> i32;
        async fd_datasync(fd: i32) -> i32;
        async fd_fdstat_get(fd: i32, stat: i32) -> i32;
        sync fd_fdstat_set_flags(fd: i32, flags: i32) -> i32;
        sync fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64) -> i32;
        async fd_filestat_get(fd: i32, stat: i32) -> i32;
        async fd_filestat_set_size(fd: i32, size: i64) -> i32;
        async fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32) -> i32;
        async fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32) -> i32;
        sync fd_prestat_get(fd: i32, prestat: i32) -> i32;
        sync fd_prestat_dir_name(fd: i32, path: i32, path_len: i32) -> i32;
        async fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32) -> i32;
        async fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32;
        async fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32) -> i32;
        async fd_renumber(fd: i32, to: i32) -> i32;
        async fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32) -> i32;
        async fd_sync(fd: i32) -> i32;
        sync fd_tell(fd: i32, offset: i32) -> i32;
        async fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32;
        async path_create_directory(fd: i32, path: i32, path_len: i32) -> i32;
        async path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32) -> i32;
        async path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32) -> i32;
        async path_link(old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) -> i32;
        async path_open(fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32, base: i64, inheriting: i64, fdflags: i32, opened: i32) -> i32;
        async path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32) -> i32;
        async path_remove_directory(fd: i32, path: i32, path_len: i32) -> i32;
        async path_rename(fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) -> i32;
        async path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32) -> i32;
        async path_unlink_file(fd: i32, path: i32, path_len: i32) -> i32;
        async poll_oneoff(subscriptions: i32, events: i32, count: i32, nevents: i32) -> i32;
        sync proc_exit(status: i32) -> ();
        sync proc_raise(signal: i32) -> i32;
        sync sched_yield() -> i32;
        sync random_get(buf: i32, buf_len: i32) -> i32;
        sync sock_accept(fd: i32, flags: i32, accepted: i32) -> i32;
        sync sock_recv(fd: i32, data: i32, data_len: i32, flags: i32, received: i32, out_flags: i32) -> i32;
        sync sock_send(fd: i32, data: i32, data_len: i32, flags: i32, sent: i32) -> i32;
        sync sock_shutdown(fd: i32, how: i32) -> i32;
    }
    Ok(builder.build())
}
