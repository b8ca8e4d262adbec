// wasmplug-build: -nostdlib -Wl,--no-entry -mbulk-memory -O3
// Bytes ABI with logging: `greet` logs "greeting <input>" at info, warns on
// empty input, and answers "hello, <input>".
#include "wasmplug.h"

#define PREFIX "greeting "
#define PREFIX_LEN (sizeof PREFIX - 1)
#define MAX_INPUT (64 * 1024)

// "greeting " followed by the input, so the log line is one host call.
static char message[PREFIX_LEN + MAX_INPUT];

WASMPLUG_EXPORT(greet) int greet(void) {
    if (wasmplug_input_len() > MAX_INPUT) {
        wasmplug_log_str(WASMPLUG_LOG_ERROR, "input is larger than 64 KiB");
        wasmplug_output_str("input is larger than 64 KiB");
        return WASMPLUG_ERROR;
    }
    // Lowers to memory.copy thanks to -mbulk-memory: no memcpy import.
    __builtin_memcpy(message, PREFIX, PREFIX_LEN);
    char *name = message + PREFIX_LEN;
    size_t len = wasmplug_input_read(name, MAX_INPUT);
    if (len == 0) {
        wasmplug_log_str(WASMPLUG_LOG_WARN, "greet called with empty input");
    }
    wasmplug_log(WASMPLUG_LOG_INFO, message, PREFIX_LEN + len);
    wasmplug_output_str("hello, ");
    wasmplug_output_write(name, len);
    return WASMPLUG_OK;
}
