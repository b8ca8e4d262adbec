/*
 * wasmplug.h - the SDK for wasmplug plugins written in C or C++.
 *
 * One header, no library: it works with `-nostdlib` (no libc at all) and
 * with wasi-libc / libc++, needs no malloc, and compiles as C or C++.
 *
 * The host provides the import module "wasmplug" with exactly four functions:
 *
 *   input_len() -> i32                  bytes of the current call's input
 *   input_read(ptr, len) -> i32         copies the first min(len, input_len)
 *                                       input bytes to ptr, returns the count
 *   output_write(ptr, len)              appends to the call's output; the host
 *                                       traps the call past its output limit
 *   log(level, ptr, len)                one log line at WASMPLUG_LOG_* level
 *
 * A "bytes ABI" export has the signature `() -> i32`. It reads its input with
 * wasmplug_input_read and writes its output with wasmplug_output_write.
 * Returning 0 means success; any other value is a plugin error, and whatever
 * was written to the output is the error message.
 *
 * Exports with numeric parameters and results (i32, i64, f32, f64) need
 * nothing from this header besides WASMPLUG_EXPORT.
 *
 * Complete example (build with
 *   clang --target=wasm32-wasi -nostdlib -Wl,--no-entry -mbulk-memory -O2 \
 *         -I cpp-plugins/include shout.c -o shout.wasm):
 *
 *   #include "wasmplug.h"
 *
 *   static unsigned char buffer[4096];
 *
 *   WASMPLUG_EXPORT(shout) int shout(void) {
 *       size_t len = wasmplug_input_len();
 *       if (len > sizeof buffer) {
 *           wasmplug_log_str(WASMPLUG_LOG_WARN, "input too large");
 *           wasmplug_output_str("input is larger than 4096 bytes");
 *           return 1;
 *       }
 *       len = wasmplug_input_read(buffer, sizeof buffer);
 *       for (size_t i = 0; i < len; i++) {
 *           if (buffer[i] >= 'a' && buffer[i] <= 'z') buffer[i] -= 'a' - 'A';
 *       }
 *       wasmplug_output_write(buffer, len);
 *       wasmplug_output_str("!");
 *       return 0;
 *   }
 *
 *   WASMPLUG_EXPORT(twice) int twice(int x) { return 2 * x; }
 *
 * With `-nostdlib` and without `-mbulk-memory`, clang may turn copy and fill
 * loops into calls to memcpy/memset, which then become imports from "env"
 * that no host provides; pass `-mbulk-memory` so they lower to the
 * memory.copy / memory.fill instructions instead.
 *
 * Outside WebAssembly (native benchmarks) the attributes drop away: exports
 * become ordinary extern "C" functions and the imports plain declarations.
 */
#ifndef WASMPLUG_H
#define WASMPLUG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define WASMPLUG_EXTERN_C extern "C"
extern "C" {
#else
#define WASMPLUG_EXTERN_C
#endif

/* Log levels understood by the host's `log` import. */
#define WASMPLUG_LOG_TRACE 0
#define WASMPLUG_LOG_DEBUG 1
#define WASMPLUG_LOG_INFO 2
#define WASMPLUG_LOG_WARN 3
#define WASMPLUG_LOG_ERROR 4

/* Bytes-ABI status codes; any non-zero value is an error. */
#define WASMPLUG_OK 0
#define WASMPLUG_ERROR 1

#ifdef __wasm__
#define WASMPLUG_IMPORT(name) \
    __attribute__((import_module("wasmplug"), import_name(#name)))
/* Marks a function as the export `name`:
 *   WASMPLUG_EXPORT(upper) int upper(void) { ... } */
#define WASMPLUG_EXPORT(name) \
    WASMPLUG_EXTERN_C __attribute__((export_name(#name)))
#else
#define WASMPLUG_IMPORT(name)
#define WASMPLUG_EXPORT(name) \
    WASMPLUG_EXTERN_C __attribute__((visibility("default")))
#endif

/* The raw host imports, exactly as the host declares them. Prefer the
 * wasmplug_* helpers below, which take pointers and sizes. */
WASMPLUG_IMPORT(input_len) int32_t wasmplug_import_input_len(void);
WASMPLUG_IMPORT(input_read) int32_t wasmplug_import_input_read(int32_t ptr, int32_t len);
WASMPLUG_IMPORT(output_write) void wasmplug_import_output_write(int32_t ptr, int32_t len);
WASMPLUG_IMPORT(log) void wasmplug_import_log(int32_t level, int32_t ptr, int32_t len);

/* Length of a NUL-terminated string, without libc. */
static inline size_t wasmplug_strlen(const char *s) {
    const char *end = s;
    while (*end) {
        end++;
    }
    return (size_t)(end - s);
}

/* Bytes of input of the current call. */
static inline size_t wasmplug_input_len(void) {
    return (size_t)(uint32_t)wasmplug_import_input_len();
}

/* Copies the first min(capacity, input length) bytes of input to `dst`;
 * returns how many were copied. */
static inline size_t wasmplug_input_read(void *dst, size_t capacity) {
    return (size_t)(uint32_t)wasmplug_import_input_read(
        (int32_t)(uintptr_t)dst, (int32_t)capacity);
}

/* Appends `len` bytes to the call's output. */
static inline void wasmplug_output_write(const void *src, size_t len) {
    wasmplug_import_output_write((int32_t)(uintptr_t)src, (int32_t)len);
}

/* Appends a NUL-terminated string (without the NUL) to the output. */
static inline void wasmplug_output_str(const char *s) {
    wasmplug_output_write(s, wasmplug_strlen(s));
}

/* Logs `len` bytes at `level` (one of WASMPLUG_LOG_*). */
static inline void wasmplug_log(int level, const void *message, size_t len) {
    wasmplug_import_log((int32_t)level, (int32_t)(uintptr_t)message, (int32_t)len);
}

/* Logs a NUL-terminated string at `level`. */
static inline void wasmplug_log_str(int level, const char *message) {
    wasmplug_log(level, message, wasmplug_strlen(message));
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* WASMPLUG_H */
